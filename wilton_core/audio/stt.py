"""Speech to text: the request, the result and the one-method engine protocol.

Every engine (embedded faster-whisper, any OpenAI-compatible server) takes the audio bytes as the
client sent them: a remote server decodes them itself, and the embedded one decodes with
audio/decode.py. Results are typed; only the HTTP layer renders json/text/srt/vtt.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from wilton_core.audio.decode import Pcm

__all__ = ["Segment", "SpeechToText", "Transcript", "TranscriptionRequest", "Word"]


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    audio: bytes
    filename: str = "audio"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False
    # the audio decoded once by the service before any model is tried (None without PyAV)
    pcm: Pcm | None = None


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    word: str


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(slots=True)
class Transcript:
    text: str
    duration_s: float
    language: str = "english"
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


class SpeechToText(Protocol):
    async def transcribe(self, req: TranscriptionRequest) -> Transcript: ...

    def stream_segments(self, req: TranscriptionRequest) -> AsyncGenerator[Segment | Transcript, None]:
        """Segments as they are ready, then the whole Transcript last (remote engines: all at once)."""
        ...

    async def aclose(self) -> None:
        """Release connections (HTTP engines); nothing for the embedded one."""
        ...
