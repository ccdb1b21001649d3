"""One assistant turn through a running router: hear, answer, speak — each stage timed.

Stages are the seed's (000): stt (transcription request), llm (chat completion through the
router's local-first split), tts_generate (speech request) and tts_playback (from the reply's
bytes to the first samples ready for a sound device: decoding the answer audio). Every call is
the router's OpenAI API, so a turn costs and routes exactly as any client's would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from wilton_core.errors import WiltonError

__all__ = ["STAGES", "Turn", "run_turn"]

STAGES = ("stt", "llm", "tts_generate", "tts_playback")
SYSTEM = "You are a voice assistant. Answer in one or two short spoken sentences, no markdown."


@dataclass(slots=True)
class Turn:
    transcript: str = ""
    answer: str = ""
    audio: bytes = b""
    stages: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)


def _check(r: httpx.Response, what: str) -> None:
    if r.status_code >= 300:
        try:
            msg = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            msg = r.text[:200]
        raise WiltonError(f"{what} failed: HTTP {r.status_code}: {msg}")


def run_turn(client: httpx.Client, audio: bytes, *, filename: str = "question.wav", chat_model: str = "auto",
             stt_model: str = "auto", tts_model: str = "auto", voice: str = "alloy", max_tokens: int = 120,
             clock: Callable[[], float] = time.perf_counter) -> Turn:
    """`client` has the router's base URL (…/v1) and any key in its headers."""
    turn = Turn()
    t = clock()
    r = client.post("/audio/transcriptions", data={"model": stt_model, "response_format": "json"},
                    files={"file": (filename, audio)})
    _check(r, "transcription")
    turn.stages["stt"] = clock() - t
    turn.transcript = str(r.json().get("text", "")).strip()
    turn.models["stt"] = r.headers.get("x-wilton-model", "")
    if not turn.transcript:
        raise WiltonError("nothing was heard in the audio (empty transcript)")
    t = clock()
    r = client.post("/chat/completions", json={"model": chat_model, "max_tokens": max_tokens, "messages": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": turn.transcript}]})
    _check(r, "chat completion")
    turn.stages["llm"] = clock() - t
    turn.models["llm"] = r.headers.get("x-wilton-model", "")
    try:
        turn.answer = str(r.json()["choices"][0]["message"]["content"] or "").strip()
    except (ValueError, KeyError, IndexError, TypeError):
        raise WiltonError("chat completion: malformed reply") from None
    if not turn.answer:
        raise WiltonError("the model gave an empty answer")
    t = clock()
    r = client.post("/audio/speech", json={"model": tts_model, "input": turn.answer[:4096], "voice": voice,
                                           "response_format": "wav"})
    _check(r, "speech")
    turn.stages["tts_generate"] = clock() - t
    turn.models["tts"] = r.headers.get("x-wilton-model", "")
    turn.audio = r.content
    t = clock()
    _first_samples(turn.audio)
    turn.stages["tts_playback"] = clock() - t
    return turn


def _first_samples(wav: bytes) -> None:
    """What a player does before the first sound: parse the header and read the first 100 ms."""
    import io
    import wave

    try:
        with wave.open(io.BytesIO(wav)) as w:
            w.readframes(w.getframerate() // 10)
    except (wave.Error, EOFError) as e:
        raise WiltonError(f"speech reply is not a WAV file ({e})") from None
