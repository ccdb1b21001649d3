"""A Transcript in the response formats of OpenAI's transcription endpoint (pure functions)."""

from __future__ import annotations

import math
from typing import Any

from wilton_core.audio.stt import Segment, Transcript

__all__ = ["TRANSCRIPT_FORMATS", "render_transcript", "srt", "vtt"]

TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(t: Transcript) -> list[Segment]:
    return t.segments or ([Segment(0.0, t.duration_s, t.text)] if t.text else [])


def srt(t: Transcript) -> str:
    return "".join(f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n\n"
                   for i, s in enumerate(_cues(t), 1))


def vtt(t: Transcript) -> str:
    return "WEBVTT\n\n" + "".join(f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n\n"
                                  for s in _cues(t))


def _usage(t: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": math.ceil(t.duration_s)}


def render_transcript(t: Transcript, fmt: str, *, words: bool = False,
                      segments: bool = True) -> tuple[str, str | dict[str, Any]]:
    """(content type, body): a str for text/srt/vtt, a dict to serialise for the JSON formats."""
    if fmt == "text":
        return "text/plain; charset=utf-8", t.text + "\n"
    if fmt == "srt":
        return "application/x-subrip; charset=utf-8", srt(t)
    if fmt == "vtt":
        return "text/vtt; charset=utf-8", vtt(t)
    if fmt == "verbose_json":
        body: dict[str, Any] = {"task": "transcribe", "language": t.language, "duration": round(t.duration_s, 3),
                                "text": t.text}
        if segments:
            body["segments"] = [
                {"id": i, "seek": 0, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
                 "tokens": [], "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0,
                 "no_speech_prob": 0.0}
                for i, s in enumerate(t.segments)]
        if words:
            body["words"] = [{"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
                             for w in t.words]
        body["usage"] = _usage(t)
        return "application/json", body
    return "application/json", {"text": t.text, "usage": _usage(t)}
