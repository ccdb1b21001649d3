"""Errors of the voice bridge that a client caused: each renders as an OpenAI-style 4xx."""

from __future__ import annotations

from wilton_core.errors import RequestError

__all__ = ["AudioTooLargeError", "AudioTooLongError", "UndecodableAudioError"]


class UndecodableAudioError(RequestError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"The audio file could not be decoded ({detail}). Supported: wav, mp3, ogg/opus, "
                         "webm, m4a, flac.", param="file", code="invalid_audio", status=400)


class AudioTooLongError(RequestError):
    def __init__(self, limit_s: float) -> None:
        super().__init__(f"The audio is longer than the limit of {limit_s:g} seconds.", param="file",
                         code="audio_too_long", status=400)


class AudioTooLargeError(RequestError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"The audio file exceeds the limit of {limit_bytes} bytes.", param="file",
                         code="request_too_large", status=413)
