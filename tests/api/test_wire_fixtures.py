"""Streams compared event by event with the providers' documented wire format (fixtures/README.md).

A: an Anthropic Messages stream answered by an OpenAI-compatible local model (the upstream replays
   OpenAI's documented stream) must equal Anthropic's documented stream example.
B: a chat-completions stream answered by the Anthropic provider (the upstream replays Anthropic's
   documented stream) must equal OpenAI's documented stream example.
The id and model are made the documented ones (x-request-id; the configured model id), so the
only fields normalised are OpenAI's per-response `created` and `system_fingerprint` (a hash of
OpenAI's own backend configuration, meaningless for another provider). Framing is compared byte
for byte; each event's JSON is compared parsed (the docs print it with spaces).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.replay import ReplayUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = pytest.mark.e2e

FIX = Path(__file__).parent / "fixtures"

CONFIG = """
[[models]]
id = "claude-3-5-sonnet-20241022"
provider = "openai"
model = "some-local-gguf"
base_url = "{up}/v1"
tier = "selfhost"
is_local = true

[[models]]
id = "gpt-4o-mini"
provider = "anthropic"
model = "claude-x"
base_url = "{up}"
api_key_env = "FAKE_ANTHROPIC_KEY"
tier = "frontier"
is_local = false
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("wire-fixtures")
    up = ReplayUpstream({
        "/v1/chat/completions": (b"text/event-stream", (FIX / "openai_chat_stream_usage.sse").read_bytes()),
        "/v1/messages": (b"text/event-stream", (FIX / "anthropic_messages_stream.sse").read_bytes()),
    }).start()
    cfg = tmp / "wilton.toml"
    cfg.write_text(CONFIG.format(up=up.url))
    port = free_port()
    env = {"WILTON_STORE_URL": f"sqlite:///{tmp / 'w.db'}", "FAKE_ANTHROPIC_KEY": "k"}
    proc = ManagedProcess.python_module("wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                                        env=env, log=tmp / "router.log").start(
        f"http://127.0.0.1:{port}/readyz", timeout=60)
    yield f"http://127.0.0.1:{port}"
    proc.stop()
    up.stop()


def frames(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) per SSE frame; asserts the framing is exactly `[event: X\\n]data: J\\n\\n`."""
    assert raw.endswith(b"\n\n") and b"\r" not in raw
    out: list[tuple[str | None, Any]] = []
    for frame in raw[:-2].split(b"\n\n"):
        lines = frame.split(b"\n")
        event = None
        if lines[0].startswith(b"event: "):
            event = lines.pop(0)[7:].decode()
        assert len(lines) == 1 and lines[0].startswith(b"data: "), frame
        data = lines[0][6:]
        out.append((event, data.decode() if data == b"[DONE]" else orjson.loads(data)))
    return out


def _normalise_openai(fs: list[tuple[str | None, Any]]) -> list[tuple[str | None, Any]]:
    for _, d in fs:
        if isinstance(d, dict):
            d.pop("created", None)
            d.pop("system_fingerprint", None)
    return fs


def test_messages_stream_from_openai_upstream_matches_anthropic_docs(router):
    prompt = "x" * 100  # the router's estimate of it is 25 tokens, as in the documented message_start
    raw = httpx.post(router + "/v1/messages", timeout=30,
                     headers={"x-request-id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "anthropic-version": "2023-06-01"},
                     json={"model": "claude-3-5-sonnet-20241022", "max_tokens": 64, "stream": True,
                           "messages": [{"role": "user", "content": prompt}]})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
    assert frames(raw.content) == frames((FIX / "anthropic_messages_stream.sse").read_bytes())


def test_chat_stream_from_anthropic_upstream_matches_openai_docs(router):
    raw = httpx.post(router + "/v1/chat/completions", timeout=30, headers={"x-request-id": "chatcmpl-123"},
                     json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert raw.status_code == 200
    got = _normalise_openai(frames(raw.content))
    want = _normalise_openai(frames((FIX / "openai_chat_stream.sse").read_bytes()))
    assert got == want
    assert all(isinstance(d, str) or abs(d["created"] - time.time()) < 3600 for _, d in frames(raw.content))
