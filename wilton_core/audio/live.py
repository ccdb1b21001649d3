"""Live transcription's decisions: when to show a partial, when an utterance is final (pure).

Audio arrives as it is recorded. An energy detector over 30 ms frames finds speech; while the
speaker talks, a partial transcript of the utterance so far is due every `partial_every_s` of
new audio; an utterance is final after `end_silence_s` of silence (or at `max_utterance_s`, or
when the upload ends). The segmenter only decides; the caller runs the model. It keeps the
current utterance's samples only, so memory is bounded by `max_utterance_s`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Final", "LiveConfig", "LiveSegmenter", "Partial", "pcm16_to_float"]


@dataclass(frozen=True, slots=True)
class LiveConfig:
    rate: int = 16_000
    frame_s: float = 0.03
    speech_rms: float = 0.01  # frames louder than this are speech (espeak/mic speech: 0.05-0.3)
    end_silence_s: float = 0.5
    partial_every_s: float = 1.0
    max_utterance_s: float = 15.0
    pad_s: float = 0.2  # silence kept before speech starts (Whisper misses clipped onsets)


@dataclass(frozen=True, slots=True)
class Partial:
    index: int
    start_s: float
    samples: np.ndarray


@dataclass(frozen=True, slots=True)
class Final:
    index: int
    start_s: float
    end_s: float
    samples: np.ndarray


def pcm16_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


@dataclass
class LiveSegmenter:
    cfg: LiveConfig = field(default_factory=LiveConfig)
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _utt: list[np.ndarray] = field(default_factory=list)
    _utt_len: int = 0
    _utt_start: int = 0  # sample index where the utterance (with its pad) starts
    _in_speech: bool = False
    _silence: int = 0  # samples of silence since the last speech frame
    _since_partial: int = 0
    _pos: int = 0  # samples consumed so far
    _index: int = 0
    _pad: list[np.ndarray] = field(default_factory=list)

    def feed(self, samples: np.ndarray) -> list[Partial | Final]:
        """Consume samples; return what is due now, in order."""
        cfg = self.cfg
        frame = int(cfg.frame_s * cfg.rate)
        buf = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        out: list[Partial | Final] = []
        n = len(buf) // frame * frame
        for i in range(0, n, frame):
            out += self._frame(buf[i:i + frame])
        self._pending = buf[n:]
        return out

    def flush(self) -> list[Partial | Final]:
        """The upload ended: whatever utterance is open is final."""
        if self._pending.size and self._in_speech:
            self._append(self._pending)
        self._pending = np.zeros(0, np.float32)
        return [self._final()] if self._in_speech else []

    def _append(self, f: np.ndarray) -> None:
        self._utt.append(f)
        self._utt_len += len(f)

    def _frame(self, f: np.ndarray) -> list[Partial | Final]:
        cfg = self.cfg
        loud = float(np.sqrt(np.mean(f * f))) >= cfg.speech_rms
        start = self._pos
        self._pos += len(f)
        if not self._in_speech:
            if not loud:
                self._pad.append(f)
                pad_frames = max(0, int(cfg.pad_s / cfg.frame_s))
                del self._pad[: max(0, len(self._pad) - pad_frames)]
                return []
            self._in_speech = True
            self._utt = list(self._pad)
            self._utt_len = sum(len(p) for p in self._pad)
            self._utt_start = start - self._utt_len
            self._pad = []
            self._silence = 0
            self._since_partial = 0
        self._append(f)
        self._since_partial += len(f)
        self._silence = 0 if loud else self._silence + len(f)
        if self._silence >= cfg.end_silence_s * cfg.rate or self._utt_len >= cfg.max_utterance_s * cfg.rate:
            return [self._final()]
        if self._since_partial >= cfg.partial_every_s * cfg.rate:
            self._since_partial = 0
            return [Partial(self._index, self._utt_start / cfg.rate, np.concatenate(self._utt))]
        return []

    def _final(self) -> Final:
        rate = self.cfg.rate
        # trailing silence is not speech: the end is where the speaker stopped
        end = self._utt_start + self._utt_len - self._silence
        out = Final(self._index, self._utt_start / rate, end / rate, np.concatenate(self._utt))
        self._index += 1
        self._in_speech = False
        self._utt, self._utt_len, self._silence, self._since_partial = [], 0, 0, 0
        return out
