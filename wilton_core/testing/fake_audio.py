"""A fake OpenAI audio server (transcriptions and speech) for the voice bridge's tests.

POST /v1/audio/transcriptions  multipart; answers verbose_json "[<model>] heard <N> bytes"
POST /v1/audio/speech          JSON; answers b"FAKE-<format>:" + the input text, as audio bytes
Failures are scripted per upstream model name: `fake.fail("whisper-1", [500, 429])` makes the next
two calls answer those statuses. `fake.calls` lists (path, model, fields) of every call.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from wilton_core.audio.form import read_form
from wilton_core.router.asgi import Receive, Scope, Send
from wilton_core.testing.fake_upstream import _bind

__all__ = ["FakeAudio"]

_TYPES = {"mp3": b"audio/mpeg", "opus": b"audio/ogg", "aac": b"audio/aac", "flac": b"audio/flac",
          "wav": b"audio/wav", "pcm": b"audio/pcm"}


class _App:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: dict[str, list[int]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def _next_failure(self, model: str) -> int | None:
        with self.lock:
            queue = self.failures.get(model)
            return queue.pop(0) if queue else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = dict(scope["headers"])
        path = scope["path"]
        if path == "/v1/audio/transcriptions":
            async def one() -> Any:
                yield raw

            form = await read_form(headers.get(b"content-type", b""), one(), max_file_bytes=50_000_000,
                                   max_field_bytes=65536)
            model = form.get("model") or ""
            fields = {k: v[-1] for k, v in form.fields.items()}
            fields["authorization"] = headers.get(b"authorization", b"").decode()
            self.calls.append((path, model, fields))
            if (status := self._next_failure(model)) is not None:
                await _respond(send, status, b'{"error": {"message": "scripted failure", "type": "server_error"}}')
                return
            text = f"[{model}] heard {len(form.file or b'')} bytes"
            await _respond(send, 200, orjson.dumps({"task": "transcribe", "language": "english", "duration": 1.5,
                                                    "text": text,
                                                    "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": text}]}))
        elif path == "/v1/audio/speech":
            body = orjson.loads(raw)
            model = body.get("model", "")
            self.calls.append((path, model, body))
            if (status := self._next_failure(model)) is not None:
                await _respond(send, status, b'{"error": {"message": "scripted failure", "type": "server_error"}}')
                return
            fmt = body.get("response_format", "mp3")
            await _respond(send, 200, f"FAKE-{fmt}:{body.get('input', '')}".encode(), _TYPES.get(fmt, b"audio/mpeg"))
        else:
            await _respond(send, 404, b'{"error": {"message": "not found"}}')


async def _respond(send: Send, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class FakeAudio:
    """The fake in a background thread on a free port."""

    def __init__(self) -> None:
        self.app = _App()
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def calls(self) -> list[tuple[str, str, dict[str, Any]]]:
        return self.app.calls

    def fail(self, model: str, statuses: list[int]) -> None:
        with self.app.lock:
            self.app.failures[model] = list(statuses)

    def start(self, timeout: float = 10.0) -> FakeAudio:
        import uvicorn

        sock = _bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", access_log=False, log_config=None, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake audio server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
