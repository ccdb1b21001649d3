"""A stream that breaks right after its role-only preamble still falls back (unit level).

The real OpenAI-compatible provider over httpx.MockTransport: the first model sends the role
chunk and then garbage / a dropped body; the executor must move on to the second model instead
of committing to the first (regression test for the fallback executor's preamble hold).
"""

from __future__ import annotations

import asyncio

import httpx
import orjson

from wilton_core.config import ModelConfig, RoutingConfig
from wilton_core.core.health import Breaker
from wilton_core.providers.factory import make_provider
from wilton_core.router.fallback import FallbackExecutor, ModelRuntime

ROLE = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}


def _chunk(text: str, finish: str | None = None) -> dict:
    return {**ROLE, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def _sse(*objs: dict, tail: bytes = b"data: [DONE]\n\n") -> bytes:
    return b"".join(b"data: " + orjson.dumps(o) + b"\n\n" for o in objs) + tail


class _Dropped(httpx.AsyncByteStream):
    def __init__(self, head: bytes) -> None:
        self.head = head

    async def __aiter__(self):
        yield self.head
        raise httpx.RemoteProtocolError("peer closed connection")


def _runtime(mid: str, handler) -> ModelRuntime:
    cfg = ModelConfig(id=mid, provider="openai", model=mid, base_url="http://upstream/v1", tier="selfhost",
                      is_local=True, timeout_s=1.0)
    return ModelRuntime(cfg, make_provider(cfg, transport=httpx.MockTransport(handler)), Breaker())


def _good(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=_sse(ROLE, _chunk("hello"), _chunk("", "stop")),
                          headers={"content-type": "text/event-stream"})


async def _open(first_handler) -> tuple[str, str, list[str]]:
    rts = {"a": _runtime("a", first_handler), "b": _runtime("b", _good)}
    ex = FallbackExecutor(rts, RoutingConfig(max_attempts_per_model=1), sleep=lambda s: asyncio.sleep(0))
    start = await ex.open_stream(["a", "b"], {"model": "auto", "messages": [{"role": "user", "content": "x"}]})
    text = [start.first] + [c async for c in start.rest]
    content = "".join((ch.get("delta") or {}).get("content") or "" for c in text for ch in c.get("choices") or [])
    for rt in rts.values():
        await rt.provider.aclose()
    return start.runtime.cfg.id, content, [a.model_id + ":" + a.kind for a in start.attempts]


async def test_garbage_after_the_preamble_falls_back() -> None:
    def bad(request):
        return httpx.Response(200, content=_sse(ROLE, tail=b"data: {broken json\n\n"),
                              headers={"content-type": "text/event-stream"})

    model, content, attempts = await _open(bad)
    assert model == "b" and content == "hello" and attempts == ["a:unavailable"]


async def test_connection_drop_after_the_preamble_falls_back() -> None:
    def dropped(request):
        return httpx.Response(200, stream=_Dropped(_sse(ROLE, tail=b"")),
                              headers={"content-type": "text/event-stream"})

    model, content, attempts = await _open(dropped)
    assert model == "b" and content == "hello" and attempts == ["a:unavailable"]


async def test_a_healthy_stream_keeps_every_chunk_in_order() -> None:
    model, content, attempts = await _open(_good)
    assert model == "a" and content == "hello" and attempts == []
