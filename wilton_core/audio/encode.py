"""Encode PCM to the formats OpenAI's speech endpoint answers in (`response_format`).

wav and pcm (raw 16-bit little-endian, the sample rate of the voice) are written directly;
mp3, opus (in ogg), aac (ADTS) and flac go through PyAV's bundled ffmpeg encoders.
"""

from __future__ import annotations

import io
import wave
from typing import Literal, cast

import numpy as np

from wilton_core.audio.decode import Pcm

__all__ = ["CONTENT_TYPES", "SpeechFormat", "encode_audio", "encode_container"]

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]

CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
    "wav": "audio/wav", "pcm": "audio/pcm",
}

# (container format, codec, sample rates the encoder accepts: None = any)
_CODECS: dict[str, tuple[str, str, tuple[int, ...] | None]] = {
    "mp3": ("mp3", "libmp3lame", None),
    "opus": ("ogg", "libopus", (48000, 24000, 16000, 12000, 8000)),
    "aac": ("adts", "aac", None),
    "flac": ("flac", "flac", None),
}


def _int16(pcm: Pcm) -> np.ndarray:
    out: np.ndarray = (np.clip(pcm.samples, -1.0, 1.0) * 32767.0).astype("<i2")
    return out


def encode_audio(pcm: Pcm, fmt: SpeechFormat) -> bytes:
    if fmt == "pcm":
        return _int16(pcm).tobytes()
    if fmt == "wav":
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(pcm.rate)
            w.writeframes(_int16(pcm).tobytes())
        return buf.getvalue()
    container_fmt, codec, rates = _CODECS[fmt]
    return encode_container(pcm, container_fmt, codec, rates)


def encode_container(pcm: Pcm, container_fmt: str, codec: str, rates: tuple[int, ...] | None = None) -> bytes:
    """`pcm` encoded with ffmpeg's `codec` in a `container_fmt` file (e.g. "webm"/"libopus", "ipod"/"aac")."""
    import av  # lazy: loads ffmpeg's libraries

    rate = pcm.rate
    if rates is not None and rate not in rates:
        rate = 24000 if 24000 in rates else rates[0]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_fmt) as out:
        stream = cast("av.AudioStream", out.add_stream(codec, rate=rate))
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(_int16(pcm).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = pcm.rate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate,
                                      frame_size=stream.frame_size or None)
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
