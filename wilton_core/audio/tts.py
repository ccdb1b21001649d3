"""Text to speech: the request, the result and the one-method engine protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from wilton_core.audio.encode import SpeechFormat

__all__ = ["MAX_INPUT_CHARS", "Speech", "SpeechRequest", "TextToSpeech"]

MAX_INPUT_CHARS = 4096  # OpenAI's limit for `input`


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    text: str
    voice: str | None = None
    response_format: SpeechFormat = "mp3"
    speed: float = 1.0


@dataclass(frozen=True, slots=True)
class Speech:
    audio: bytes
    content_type: str
    duration_s: float  # of the audio produced (0.0 when the upstream did not say and we did not decode)


class TextToSpeech(Protocol):
    async def synthesize(self, req: SpeechRequest) -> Speech: ...

    async def aclose(self) -> None:
        """Release connections (HTTP engines); nothing for the embedded one."""
        ...
