"""Which engine runs each configured audio model (the audio counterpart of providers/factory.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from wilton_core.audio.espeak import EspeakTTS
from wilton_core.audio.stt import SpeechToText
from wilton_core.audio.stt_openai import OpenAICompatSTT
from wilton_core.audio.tts import TextToSpeech
from wilton_core.audio.tts_openai import OpenAICompatTTS
from wilton_core.audio.whisper_local import FasterWhisperSTT
from wilton_core.config import ModelConfig

__all__ = ["AudioLimits", "make_stt", "make_tts"]


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """What one audio request may carry. 25 MB is OpenAI's own upload limit."""

    max_upload_bytes: int = 25 * 1024 * 1024
    max_duration_s: float = 900.0
    max_field_bytes: int = 64 * 1024  # each non-file form field (prompt, language ...)


def make_stt(m: ModelConfig, limits: AudioLimits, environ: Mapping[str, str] | None = None,
             transport: httpx.AsyncBaseTransport | None = None) -> SpeechToText:
    if m.provider == "faster_whisper":
        # "tiny.en" is the bundled model; anything else names a CTranslate2 model directory
        path = None if m.model == "tiny.en" else Path(m.model)
        return FasterWhisperSTT(m.id, model_path=path, max_bytes=limits.max_upload_bytes,
                                max_duration_s=limits.max_duration_s)
    return OpenAICompatSTT(m, api_key=m.api_key(environ), transport=transport)


def make_tts(m: ModelConfig, environ: Mapping[str, str] | None = None,
             transport: httpx.AsyncBaseTransport | None = None) -> TextToSpeech:
    if m.provider == "espeak_ng":
        return EspeakTTS(m.id, default_voice=m.voice or "en-us", timeout_s=m.timeout_s)
    return OpenAICompatTTS(m, api_key=m.api_key(environ), transport=transport)
