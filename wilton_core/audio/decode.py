"""Decode any container/codec ffmpeg knows (wav, mp3, ogg/opus, webm, m4a, flac) to 16 kHz mono PCM.

PyAV bundles ffmpeg, so nothing is shelled out. Limits are checked while decoding: a file over
`max_bytes` is refused before it is opened, and decoding stops as soon as the audio passes
`max_duration_s` (a tiny compressed file cannot expand into hours of samples in memory).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from wilton_core.audio.errors import AudioTooLargeError, AudioTooLongError, UndecodableAudioError

__all__ = ["SAMPLE_RATE", "Pcm", "decode_audio"]

SAMPLE_RATE = 16_000  # what Whisper models expect


@dataclass(frozen=True, slots=True)
class Pcm:
    """Mono float32 samples in [-1, 1] at `rate` Hz."""

    samples: np.ndarray
    rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


def decode_audio(data: bytes, *, max_bytes: int, max_duration_s: float, rate: int = SAMPLE_RATE) -> Pcm:
    """The audio in `data` as mono float32 at `rate` Hz. Raises the 4xx errors of audio/errors.py."""
    if len(data) > max_bytes:
        raise AudioTooLargeError(max_bytes)
    if not data:
        raise UndecodableAudioError("the file is empty")
    import av  # lazy: loads ffmpeg's libraries

    max_samples = int(max_duration_s * rate)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UndecodableAudioError("no audio stream in the file")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    total += len(arr)
                    if total > max_samples:
                        raise AudioTooLongError(max_duration_s)
                    chunks.append(arr)
            for out in resampler.resample(None):
                arr = out.to_ndarray().reshape(-1)
                total += len(arr)
                if total > max_samples:
                    raise AudioTooLongError(max_duration_s)
                chunks.append(arr)
    except (UndecodableAudioError, AudioTooLongError):
        raise
    except (av.FFmpegError, ValueError, IndexError, OSError, EOFError) as e:
        raise UndecodableAudioError(type(e).__name__) from None
    if total == 0:
        raise UndecodableAudioError("no audio samples in the file")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    return Pcm(np.clip(samples, -1.0, 1.0), rate)
