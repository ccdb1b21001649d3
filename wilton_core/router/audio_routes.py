"""HTTP face of the voice bridge: OpenAI's audio endpoints on the router's raw ASGI app.

POST /v1/audio/transcriptions  multipart (file, model, language, prompt, response_format,
                               timestamp_granularities[], temperature, stream)
POST /v1/audio/speech          JSON (model, input, voice, response_format, speed)

Validation and rendering live here; choosing, fallback and the ledger in audio/service.py.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

from wilton_core.access.caller import Caller
from wilton_core.audio.form import Form, read_form
from wilton_core.audio.render import TRANSCRIPT_FORMATS, render_transcript
from wilton_core.audio.service import AudioService
from wilton_core.audio.stt import Segment, Transcript, TranscriptionRequest
from wilton_core.audio.tts import MAX_INPUT_CHARS, SpeechRequest
from wilton_core.errors import NoHealthyModelError, ProviderError, RequestError
from wilton_core.router.asgi import Receive, Scope, Send
from wilton_core.router.audio_live import LiveRoute
from wilton_core.router.fallback import Attempt
from wilton_core.router.wire import error_body, sse_event

__all__ = ["AudioRoutes", "parse_speech_body", "parse_transcription_form"]

log = logging.getLogger("wilton.router")


SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no")]
_MAX_SPEECH_BODY = 64 * 1024


def _bad(message: str, param: str | None, code: str = "invalid_value") -> RequestError:
    return RequestError(message, param=param, code=code, status=400)


def _bool(v: str | None, param: str) -> bool:
    if v is None or v.lower() in ("false", "0", ""):
        return False
    if v.lower() in ("true", "1"):
        return True
    raise _bad(f"'{param}' must be true or false.", param)


def _float(v: object, param: str, lo: float, hi: float, default: float) -> float:
    """A number in [lo, hi] from a form string or a JSON number; anything else (a list, true) is a 400."""
    if v is None:
        return default
    x = math.nan
    if isinstance(v, str | int | float) and not isinstance(v, bool):
        with contextlib.suppress(ValueError):
            x = float(v)
    if not math.isfinite(x) or not lo <= x <= hi:
        raise _bad(f"'{param}' must be a number from {lo:g} to {hi:g}.", param)
    return x


def parse_transcription_form(form: Form) -> tuple[TranscriptionRequest, str, str, bool, bool]:
    """(request, model, response_format, stream, words) from the form; RequestError when invalid."""
    if not form.file:
        raise _bad("Missing the audio 'file' part.", "file", "missing_required_parameter")
    fmt = form.get("response_format") or "json"
    if fmt not in TRANSCRIPT_FORMATS:
        raise _bad(f"'response_format' must be one of {', '.join(TRANSCRIPT_FORMATS)}.", "response_format")
    grans = form.fields.get("timestamp_granularities[]", []) + form.fields.get("timestamp_granularities", [])
    for g in grans:
        if g not in ("word", "segment"):
            raise _bad("'timestamp_granularities[]' values must be word or segment.", "timestamp_granularities[]")
    language = form.get("language") or None
    if language is not None and not _LANG_RE.match(language):
        raise _bad("'language' must be an ISO-639 code such as en.", "language")
    stream = _bool(form.get("stream"), "stream")
    if stream and fmt not in ("json", "text"):
        raise _bad("stream=true needs response_format json or text.", "stream")
    model = form.get("model") or "auto"
    if len(model) > 128:
        raise _bad("'model' is too long.", "model")
    req = TranscriptionRequest(audio=form.file, filename=form.filename, language=language,
                               prompt=form.get("prompt") or None,
                               temperature=_float(form.get("temperature"), "temperature", 0.0, 1.0, 0.0),
                               word_timestamps="word" in grans)
    return req, model, fmt, stream, "word" in grans


def parse_speech_body(body: object) -> tuple[SpeechRequest, str]:
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_type")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise _bad("'input' must be a non-empty string.", "input")
    if len(text) > MAX_INPUT_CHARS:
        raise _bad(f"'input' is longer than {MAX_INPUT_CHARS} characters.", "input", "string_above_max_length")
    voice = body.get("voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if voice is not None and (not isinstance(voice, str) or not 0 < len(voice) <= 64):
        raise _bad("'voice' must be a voice name.", "voice")
    fmt = body.get("response_format", "mp3")
    if fmt not in SPEECH_FORMATS:
        raise _bad(f"'response_format' must be one of {', '.join(SPEECH_FORMATS)}.", "response_format")
    if body.get("stream_format", "audio") != "audio":
        raise _bad("Only stream_format 'audio' is supported.", "stream_format")
    model = body.get("model", "auto")
    if not isinstance(model, str) or len(model) > 128:
        raise _bad("'model' must be a string.", "model")
    speed = _float(body.get("speed"), "speed", 0.25, 4.0, 1.0)
    return SpeechRequest(text=text, voice=voice, response_format=fmt, speed=speed), model


def _headers(model_id: str, is_local: bool, attempts: list[Attempt], rid: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-wilton-model", model_id.encode()), (b"x-wilton-local", b"true" if is_local else b"false"),
            (b"x-wilton-fallbacks", ",".join(f"{a.model_id}:{a.kind}" for a in attempts).encode() or b"0"),
            (b"x-request-id", rid.encode())]


def _header(scope: Scope, name: bytes) -> bytes:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v)
    return b""


# the access gate's verdict for this request (wilton_core.access.caller.Caller), put on the scope by
# the router app when keys are on
CALLER_KEY = "wilton.caller"


def _caller(scope: Scope) -> Caller | None:
    c = scope.get(CALLER_KEY)
    return c if isinstance(c, Caller) else None


def local_only(scope: Scope) -> bool:
    """Held to local models: by the privacy header, or by the client's key."""
    c = _caller(scope)
    return (c is not None and c.local_only) or _header(scope, b"x-wilton-privacy").strip().lower() == b"local-only"


def key_id(scope: Scope) -> str:
    c = _caller(scope)
    return c.key_id if c is not None else ""


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ConnectionResetError
        yield msg.get("body", b"")
        if not msg.get("more_body"):
            return


async def send_bytes(send: Send, status: int, body: bytes, ctype: str,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def no_model_reply(e: NoHealthyModelError) -> tuple[int, bytes]:
    """400 when every model that was tried refused the request itself (a voice it does not have),
    429 when only rate limits stood in the way, else 503."""
    tried = [{"model": m, "error": k} for m, k in e.tried]
    if e.tried and all(k == "bad_request" for _, k in e.tried):
        status, type_, code = 400, "invalid_request_error", "rejected_by_model"
    elif e.rate_limited:
        status, type_, code = 429, "rate_limit_error", "rate_limit_exceeded"
    else:
        status, type_, code = 503, "service_unavailable", "no_healthy_model"
    return status, orjson.dumps({"error": {"message": e.message, "type": type_, "param": None, "code": code,
                                           "tried": tried}})


class AudioRoutes:
    def __init__(self, service: AudioService) -> None:
        self.service = service
        self.routes: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
            "/v1/audio/transcriptions": self.transcriptions,
            "/audio/transcriptions": self.transcriptions,
            "/v1/audio/speech": self.speech,
            "/audio/speech": self.speech,
            "/v1/audio/transcriptions/live": self.live,
        }
        self._live = LiveRoute(service)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One request on an audio path: every failure becomes an OpenAI error JSON."""
        handler = self.routes[scope["path"]]
        try:
            await handler(scope, receive, send)
        except ConnectionResetError:
            return
        except RequestError as e:
            await send_bytes(send, e.status, error_body(e.message, e.type, e.param, e.code), "application/json")
        except NoHealthyModelError as e:
            status, body = no_model_reply(e)
            retry = [(b"retry-after", str(max(1, math.ceil(e.retry_after))).encode())] if e.retry_after else []
            await send_bytes(send, status, body, "application/json", retry)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            with contextlib.suppress(Exception):
                await send_bytes(send, 500, error_body("Internal error in the router; see its log.", "server_error",
                                                       None, "internal_error"), "application/json")

    async def transcriptions(self, scope: Scope, receive: Receive, send: Send) -> None:
        lim = self.service.limits
        form = await read_form(_header(scope, b"content-type"), body_chunks(receive),
                               max_file_bytes=lim.max_upload_bytes, max_field_bytes=lim.max_field_bytes)
        req, model, fmt, stream, words = parse_transcription_form(form)
        private = local_only(scope)
        if stream:
            out = await self.service.open_transcript_stream(req, model, local_only=private, key_id=key_id(scope))
            headers = _SSE + _headers(out.model.id, out.model.is_local, out.attempts, out.request_id)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in _sse(out.events):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        res = await self.service.transcribe(req, model, local_only=private, key_id=key_id(scope))
        ctype, body = render_transcript(res.transcript, fmt, words=words)
        raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
        await send_bytes(send, 200, raw, ctype, _headers(res.model.id, res.model.is_local, res.attempts,
                                                         res.request_id))

    async def live(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._live(scope, receive, send, local_only=local_only(scope))

    async def speech(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        async for c in body_chunks(receive):
            size += len(c)
            if size > _MAX_SPEECH_BODY:
                raise RequestError(f"Request body exceeds the limit of {_MAX_SPEECH_BODY} bytes.",
                                   code="request_too_large", status=413)
            chunks.append(c)
        try:
            body = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as e:
            raise _bad(f"The request body is not valid JSON: {e.msg}.", None, "invalid_json") from None
        req, model = parse_speech_body(body)
        res = await self.service.speak(req, model, local_only=local_only(scope), key_id=key_id(scope))
        await send_bytes(send, 200, res.speech.audio, res.speech.content_type,
                         _headers(res.model.id, res.model.is_local, res.attempts, res.request_id))


async def _sse(events: AsyncIterator[Segment | Transcript]) -> AsyncIterator[bytes]:
    """OpenAI's transcription stream events; a failure after the first byte is an error event."""
    try:
        async for ev in events:
            if isinstance(ev, Transcript):
                yield sse_event({"type": "transcript.text.done", "text": ev.text})
            elif ev.text:
                yield sse_event({"type": "transcript.text.delta", "delta": ev.text})
    except ProviderError as e:
        yield sse_event({"error": {"message": f"transcription failed: {e.kind}", "type": "upstream_error",
                                   "param": None, "code": e.kind}})
