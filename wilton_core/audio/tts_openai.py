"""Text to speech over HTTP: any server speaking OpenAI's `POST /v1/audio/speech` (OpenAI itself,
openedai-speech, Kokoro-FastAPI, speaches ...). The audio comes back as the bytes to send on."""

from __future__ import annotations

import httpx

from wilton_core.audio.encode import CONTENT_TYPES
from wilton_core.audio.tts import MAX_INPUT_CHARS, Speech, SpeechRequest
from wilton_core.config import ModelConfig
from wilton_core.errors import UnavailableError
from wilton_core.providers._common import make_client
from wilton_core.providers.errors_map import error_from_exception, error_from_http
from wilton_core.providers.openai_compat import DEFAULT_OPENAI_BASE_URL

__all__ = ["OpenAICompatTTS"]

_MAX_AUDIO_BYTES = 64 * 1024 * 1024


class OpenAICompatTTS:
    def __init__(self, model: ModelConfig, *, api_key: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.model = model
        # no base_url: OpenAI itself, as for chat models (OPENAI_BASE_URL, when set, fills it in the defaults)
        self._url = (model.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/") + "/audio/speech"
        self._key = api_key if api_key is not None else model.api_key()
        self._client = make_client(model, transport)

    async def synthesize(self, req: SpeechRequest) -> Speech:
        m = self.model
        body = {"model": m.model, "input": req.text[:MAX_INPUT_CHARS], "voice": req.voice or m.voice or "alloy",
                "response_format": req.response_format, "speed": req.speed}
        headers = {"authorization": f"Bearer {self._key}"} if self._key else {}
        try:
            async with self._client.stream("POST", self._url, json=body, headers=headers) as r:
                if r.status_code >= 300:
                    raw = await r.aread()
                    raise error_from_http(r.status_code, r.headers, raw, provider=m.provider, model=m.id,
                                          secrets=[self._key])
                chunks: list[bytes] = []
                size = 0
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > _MAX_AUDIO_BYTES:
                        raise UnavailableError(f"{m.id}: speech reply larger than {_MAX_AUDIO_BYTES} bytes",
                                               provider=m.provider, model=m.id)
                    chunks.append(chunk)
        except httpx.HTTPError as e:
            raise error_from_exception(e, provider=m.provider, model=m.id, secrets=[self._key]) from None
        audio = b"".join(chunks)
        if not audio:
            raise UnavailableError(f"{m.id}: empty speech reply", provider=m.provider, model=m.id)
        return Speech(audio=audio, content_type=CONTENT_TYPES[req.response_format], duration_s=0.0)

    async def aclose(self) -> None:
        await self._client.aclose()
