"""The live segmenter's decisions on synthetic audio: silence, speech bursts, pauses."""

from __future__ import annotations

import numpy as np
import pytest

from wilton_core.audio.live import Final, LiveConfig, LiveSegmenter, Partial, pcm16_to_float

R = 16_000


def tone(seconds: float, amp: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * R)) / R
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * R), np.float32)


def run(audio: np.ndarray, chunk_s: float = 0.1, cfg: LiveConfig | None = None) -> list[Partial | Final]:
    seg = LiveSegmenter(cfg or LiveConfig())
    step = int(chunk_s * R)
    out = []
    for i in range(0, len(audio), step):
        out += seg.feed(audio[i:i + step])
    return out + seg.flush()


def test_silence_gives_nothing():
    assert run(silence(5)) == []


def test_two_utterances_split_by_a_pause():
    out = run(np.concatenate([silence(0.5), tone(2.5), silence(1.0), tone(1.2), silence(0.2)]))
    finals = [o for o in out if isinstance(o, Final)]
    assert [f.index for f in finals] == [0, 1]
    assert finals[0].start_s == pytest.approx(0.3, abs=0.05)  # 0.2 s of pad before the onset
    assert finals[0].end_s == pytest.approx(3.0, abs=0.05)
    assert finals[1].start_s == pytest.approx(3.8, abs=0.05)
    # the second is still open when the upload ends: flush makes it final
    assert finals[1].end_s == pytest.approx(5.2, abs=0.05)
    partials = [o for o in out if isinstance(o, Partial)]
    assert [p.index for p in partials] == [0, 0, 1]  # every 1 s of speech
    assert len(partials[1].samples) > len(partials[0].samples)


def test_partial_and_final_do_not_depend_on_chunk_size():
    audio = np.concatenate([tone(2.0), silence(0.8)])
    a = [(type(o).__name__, o.index, len(o.samples)) for o in run(audio, 0.03)]
    b = [(type(o).__name__, o.index, len(o.samples)) for o in run(audio, 0.37)]
    assert a == b


def test_a_long_utterance_is_cut_at_the_limit():
    out = run(tone(7.0), cfg=LiveConfig(max_utterance_s=3.0))
    finals = [o for o in out if isinstance(o, Final)]
    assert len(finals) == 3 and all(len(f.samples) <= 3.0 * R + 480 for f in finals)


def test_pcm16_conversion():
    assert pcm16_to_float(np.array([0, 16384, -32768], "<i2").tobytes()).tolist() == [0.0, 0.5, -1.0]


def test_wav_header_is_skipped_once_complete():
    import io
    import wave

    from wilton_core.errors import RequestError
    from wilton_core.router.audio_live import strip_wav_header

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x01\x00" * 10)
    wav = buf.getvalue()
    assert strip_wav_header(b"RI") is None and strip_wav_header(wav[:30]) is None
    assert strip_wav_header(wav) == b"\x01\x00" * 10
    assert strip_wav_header(b"\x05\x00\x06\x00") == b"\x05\x00\x06\x00"  # raw PCM passes
    with pytest.raises(RequestError):
        strip_wav_header(b"RIFF" + b"\x00" * 5000)
