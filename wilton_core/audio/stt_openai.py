"""Speech to text over HTTP: any server speaking OpenAI's `POST /v1/audio/transcriptions`.

whisper.cpp's server, the faster-whisper servers (speaches, faster-whisper-server), OpenAI and
Groq all take the same multipart form. We always ask for `verbose_json` (segments and duration,
for the ledger and for srt/vtt) and fall back to reading `text` alone when a server sends less.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator

import httpx

from wilton_core.audio.stt import Segment, Transcript, TranscriptionRequest, Word
from wilton_core.config import ModelConfig
from wilton_core.errors import UnavailableError
from wilton_core.providers._common import make_client
from wilton_core.providers.errors_map import error_from_exception, error_from_http
from wilton_core.providers.openai_compat import DEFAULT_OPENAI_BASE_URL

__all__ = ["OpenAICompatSTT", "parse_transcript"]

_MAX_TEXT = 1_000_000  # characters of transcript we accept from an upstream


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        return None
    return float(v)


def parse_transcript(data: object, fallback_duration_s: float) -> Transcript:
    """A Transcript from an upstream's JSON reply; ValueError when it has no `text` string."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("reply has no 'text' string")
    segments: list[Segment] = []
    for s in data.get("segments") or ():
        if isinstance(s, dict) and isinstance(s.get("text"), str):
            start, end = _num(s.get("start")), _num(s.get("end"))
            if start is not None and end is not None:
                segments.append(Segment(start, end, s["text"][:_MAX_TEXT]))
    words: list[Word] = []
    for w in data.get("words") or ():
        if isinstance(w, dict) and isinstance(w.get("word"), str):
            start, end = _num(w.get("start")), _num(w.get("end"))
            if start is not None and end is not None:
                words.append(Word(start, end, w["word"]))
    duration = _num(data.get("duration"))
    lang = data.get("language")
    return Transcript(text=data["text"][:_MAX_TEXT], duration_s=duration if duration is not None else fallback_duration_s,
                      language=lang if isinstance(lang, str) else "english", segments=segments, words=words)


class OpenAICompatSTT:
    def __init__(self, model: ModelConfig, *, api_key: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.model = model
        # no base_url: OpenAI itself, as for chat models (OPENAI_BASE_URL, when set, fills it in the defaults)
        self._url = (model.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/") + "/audio/transcriptions"
        self._key = api_key if api_key is not None else model.api_key()
        self._client = make_client(model, transport)

    async def transcribe(self, req: TranscriptionRequest) -> Transcript:
        m = self.model
        form: dict[str, str] = {"model": m.model, "response_format": "verbose_json",
                                "temperature": repr(req.temperature)}
        if req.language:
            form["language"] = req.language
        if req.prompt:
            form["prompt"] = req.prompt
        if req.word_timestamps:
            form["timestamp_granularities[]"] = "word"
        headers = {"authorization": f"Bearer {self._key}"} if self._key else {}
        try:
            r = await self._client.post(self._url, data=form, files={"file": (req.filename, req.audio)},
                                        headers=headers)
        except httpx.HTTPError as e:
            raise error_from_exception(e, provider=m.provider, model=m.id, secrets=[self._key]) from None
        if r.status_code >= 300:
            raise error_from_http(r.status_code, r.headers, r.content, provider=m.provider, model=m.id,
                                  secrets=[self._key])
        try:
            return parse_transcript(r.json(), 0.0)
        except ValueError as e:
            raise UnavailableError(f"{m.id}: malformed transcription reply: {e}", provider=m.provider,
                                   model=m.id) from None

    async def stream_segments(self, req: TranscriptionRequest) -> AsyncGenerator[Segment | Transcript, None]:
        t = await self.transcribe(req)
        for s in t.segments:
            yield s
        yield t

    async def aclose(self) -> None:
        await self._client.aclose()
