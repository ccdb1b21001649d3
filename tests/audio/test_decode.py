"""Decoding uploads: every promised format, and a clear 4xx for what cannot be heard."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from wilton_core.audio.decode import SAMPLE_RATE, Pcm, decode_audio
from wilton_core.audio.encode import encode_audio
from wilton_core.audio.errors import AudioTooLargeError, AudioTooLongError, UndecodableAudioError

from .conftest import FORMATS, as_format

LIMITS = {"max_bytes": 10_000_000, "max_duration_s": 60.0}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_each_upload_format_decodes_to_the_same_length(hello_wav, kind):
    ref = decode_audio(hello_wav, **LIMITS)
    data = as_format(hello_wav, kind)
    assert data[:4] != hello_wav[:4]  # really another container
    pcm = decode_audio(data, **LIMITS)
    assert pcm.rate == SAMPLE_RATE and pcm.samples.dtype == np.float32
    # codecs pad a little (priming samples, frame size); the speech itself is all there
    assert abs(pcm.duration_s - ref.duration_s) < 0.15, kind
    assert float(np.abs(pcm.samples).max()) > 0.05  # not silence


def test_wav_decodes_to_16k_mono(hello_wav):
    pcm = decode_audio(hello_wav, **LIMITS)
    assert 1.5 < pcm.duration_s < 6.0
    assert pcm.samples.ndim == 1 and float(np.abs(pcm.samples).max()) <= 1.0


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, bytes(range(256)) * 40,
                                  b"RIFF\x00\x00\x00\x00WAVEfmt garbage"])
def test_undecodable_bytes_are_a_400(data):
    with pytest.raises(UndecodableAudioError) as e:
        decode_audio(data, **LIMITS)
    assert e.value.status == 400 and e.value.code == "invalid_audio" and e.value.param == "file"


def test_truncated_mp3_decodes_what_is_there_or_refuses(hello_wav):
    mp3 = as_format(hello_wav, "mp3")
    try:
        pcm = decode_audio(mp3[: len(mp3) // 2], **LIMITS)
    except UndecodableAudioError:
        return
    assert 0 < pcm.duration_s < decode_audio(mp3, **LIMITS).duration_s


def test_size_limit_is_checked_before_decoding(hello_wav):
    with pytest.raises(AudioTooLargeError) as e:
        decode_audio(hello_wav, max_bytes=len(hello_wav) - 1, max_duration_s=60)
    assert e.value.status == 413


def test_duration_limit_stops_decoding(hello_wav):
    with pytest.raises(AudioTooLongError) as e:
        decode_audio(hello_wav, max_bytes=10_000_000, max_duration_s=1.0)
    assert e.value.status == 400 and e.value.code == "audio_too_long"


def test_a_silent_hour_in_a_small_file_is_refused_without_decoding_it_all():
    # 1 hour of 8 kHz silence compresses to little as FLAC: the limit must trip while decoding
    pcm = Pcm(np.zeros(8000 * 600, dtype=np.float32), 8000)
    flac = encode_audio(pcm, "flac")
    assert len(flac) < 2_000_000
    with pytest.raises(AudioTooLongError):
        decode_audio(flac, max_bytes=10_000_000, max_duration_s=60.0)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
def test_encoded_speech_formats_decode_back(hello_wav, fmt):
    pcm = decode_audio(hello_wav, **LIMITS)
    back = decode_audio(encode_audio(pcm, fmt), **LIMITS)
    assert abs(back.duration_s - pcm.duration_s) < 0.15


def test_pcm_and_wav_are_16_bit_at_the_voice_rate(hello_wav):
    pcm = decode_audio(hello_wav, max_bytes=10_000_000, max_duration_s=60, rate=22050)
    raw = encode_audio(pcm, "pcm")
    assert len(raw) == 2 * len(pcm.samples)
    with wave.open(io.BytesIO(encode_audio(pcm, "wav"))) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (22050, 2, 1)
        assert w.getnframes() == len(pcm.samples)
