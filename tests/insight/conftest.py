"""A fake LLM upstream on 127.0.0.1:0 speaking the real wire formats (OpenAI chat completions,
Gemini generateContent, our router's OpenAI + x-wilton-model), scripted per test."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Reply = tuple[int, dict[str, str], dict[str, Any]]


def openai_completion(text: str, model: str = "gpt-4o-2024-08-06") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366},
    }


def gemini_response(text: str, model_version: str = "gemini-2.5-flash-001") -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                        "index": 0}],
        "usageMetadata": {"promptTokenCount": 210, "candidatesTokenCount": 30, "totalTokenCount": 240},
        "modelVersion": model_version, "responseId": "fake-1",
    }


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLLM:
    """`reply(seen) -> (status, headers, json)`; every request is kept in `seen`."""

    url: str
    reply: Callable[[Seen], Reply]
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM(url="", reply=lambda s: (500, {}, {"error": {"message": "not scripted"}}))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen = Seen("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw or b"{}"))
            fake.seen.append(seen)
            status, headers, body = fake.reply(seen)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def refused_url() -> str:
    """A 127.0.0.1 URL nobody listens on (bound then closed, so the port is free)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
