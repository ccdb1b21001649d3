"""Live transcription over one HTTP request: audio uploaded as it is recorded (chunked transfer),
transcript segments streamed back as SSE while the upload goes on.

POST /v1/audio/transcriptions/live?model=&language=
    body: 16 kHz mono 16-bit little-endian PCM (a WAV header in front is skipped), sent chunked;
    events: {"type": "transcript.partial", "segment", "start", "text"}   the utterance so far
            {"type": "transcript.segment", "segment", "start", "end", "text"}   final, after a pause
            {"type": "transcript.text.done", "text"}   every final segment, when the upload ended
The request and response run at once (HTTP/1.1 allows it; curl --no-buffer -T - and the test's
raw client do it). Partials that are already stale when the model is free are skipped: a slow
CPU shows fewer partials, never a growing backlog. Audio over the duration limit ends the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from urllib.parse import parse_qs

from wilton_core.audio.decode import Pcm
from wilton_core.audio.live import Final, LiveConfig, LiveSegmenter, Partial, pcm16_to_float
from wilton_core.audio.service import AudioService
from wilton_core.audio.stt import TranscriptionRequest
from wilton_core.errors import ProviderError, RequestError
from wilton_core.router.asgi import Receive, Scope, Send
from wilton_core.router.wire import sse_event

__all__ = ["LiveRoute", "strip_wav_header"]


_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no")]


def strip_wav_header(head: bytes) -> bytes | None:
    """The PCM after a WAV header in `head`, or None when more bytes are needed to find it."""
    if len(head) < 4 and b"RIFF".startswith(head):
        return None  # too short to tell yet
    if not head.startswith(b"RIFF"):
        return head
    i = head.find(b"data", 12)
    if i < 0 or len(head) < i + 8:
        if len(head) > 4096:
            raise RequestError("A WAV header with no data chunk in its first 4 KiB.", param="file",
                               code="invalid_audio")
        return None
    return head[i + 8:]


class LiveRoute:
    def __init__(self, service: AudioService, cfg: LiveConfig | None = None) -> None:
        self.service = service
        self.cfg = cfg or LiveConfig()

    async def __call__(self, scope: Scope, receive: Receive, send: Send, *, local_only: bool) -> None:
        q = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        model_cfg, engine = self.service.live_engine(q.get("model", "auto")[:128], local_only=local_only)
        language = q.get("language")
        if language is not None and not (2 <= len(language) <= 8 and language.replace("-", "").isalpha()):
            raise RequestError("'language' must be an ISO-639 code such as en.", param="language", code="invalid_value")
        req = TranscriptionRequest(b"", language=language)
        t0 = time.perf_counter()
        work = _Work()
        max_samples = int(self.service.limits.max_duration_s * self.cfg.rate)
        total = 0
        refused: list[RequestError] = []  # what the reader found wrong with the upload

        async def read() -> None:
            nonlocal total
            seg = LiveSegmenter(self.cfg)
            head: bytes | None = b""
            carry = b""
            try:
                while True:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        break
                    data = msg.get("body", b"")
                    if head is not None:
                        stripped = strip_wav_header(head + data)
                        if stripped is None:
                            head += data
                            data = b""
                        else:
                            head, data = None, stripped
                    data = carry + data
                    carry = data[len(data) // 2 * 2:]
                    samples = pcm16_to_float(data[: len(data) // 2 * 2])
                    total += len(samples)
                    for item in seg.feed(samples):
                        work.put(item)
                    if total > max_samples or not msg.get("more_body"):
                        break
                for item in seg.flush():
                    work.put(item)
            except RequestError as e:
                refused.append(e)
            finally:
                work.put(None)

        reader = asyncio.create_task(read())
        headers = [*_SSE, (b"x-wilton-model", model_cfg.id.encode()), (b"x-wilton-local", b"true")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        finals: list[str] = []
        status, error_class = "ok", None
        try:
            while True:
                item = await work.get()
                if item is None:
                    break
                if isinstance(item, Partial) and work.has_newer(item):
                    continue
                t = await engine.transcribe_decoded(Pcm(item.samples, self.cfg.rate), req)
                if isinstance(item, Partial):
                    ev = {"type": "transcript.partial", "segment": item.index, "start": round(item.start_s, 3),
                          "text": t.text}
                else:
                    finals.append(t.text)
                    ev = {"type": "transcript.segment", "segment": item.index, "start": round(item.start_s, 3),
                          "end": round(item.end_s, 3), "text": t.text}
                await send({"type": "http.response.body", "body": sse_event(ev), "more_body": True})
            if refused:
                e = refused[0]
                status, error_class = "error", e.code or "bad_request"
                await send({"type": "http.response.body", "body": sse_event(
                    {"error": {"message": e.message, "type": e.type, "param": e.param, "code": e.code}}),
                    "more_body": False})
                return
            text = " ".join(f for f in finals if f)
            await send({"type": "http.response.body", "body": sse_event({"type": "transcript.text.done", "text": text}),
                        "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except (asyncio.CancelledError, ConnectionResetError, OSError):
            status, error_class = "stream_error", "client_disconnected"
            raise
        except Exception as e:
            status, error_class = "stream_error", e.kind if isinstance(e, ProviderError) else "internal_error"
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": sse_event(
                    {"error": {"message": "live transcription failed", "type": "server_error", "param": None,
                               "code": error_class}}), "more_body": False})
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            self.service.record_live(model_cfg, started=t0, audio_s=total / self.cfg.rate,
                                     chars=sum(len(f) for f in finals), status=status, error_class=error_class,
                                     local_only=local_only)


class _Work:
    """What the reader found, in order, for the transcriber; None marks the end of the upload."""

    def __init__(self) -> None:
        self._items: deque[Partial | Final | None] = deque()
        self._ready = asyncio.Event()

    def put(self, item: Partial | Final | None) -> None:
        self._items.append(item)
        self._ready.set()

    async def get(self) -> Partial | Final | None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def has_newer(self, item: Partial) -> bool:
        """A newer partial or the final of the same utterance is already waiting: `item` is stale."""
        return any(p is not None and p.index >= item.index for p in self._items)
