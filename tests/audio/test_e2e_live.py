"""Live transcription end to end: speech uploaded in real time (chunked), segments back as SSE
while the upload goes on. The router runs on its own server, which streams a chunked request
body to the app as it arrives (router/server.py, docs/voice.md)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from wilton_core.audio.decode import decode_audio
from wilton_core.audio.wer import wer
from wilton_core.testing.live_client import live_transcribe
from wilton_core.testing.procs import ManagedProcess, free_port

from .conftest import speak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("faster_whisper", reason="the [voice] extra is not installed")

CONFIG = """
[[models]]
id = "chat"
provider = "dummy"
model = "echo"
tier = "selfhost"
is_local = true

[[models]]
id = "whisper-local"
kind = "stt"
provider = "faster_whisper"
model = "tiny.en"
tier = "selfhost"
is_local = true

[[models]]
id = "espeak"
kind = "tts"
provider = "espeak_ng"
model = "espeak-ng"
tier = "selfhost"
is_local = true
"""
FIRST = "What time is the meeting tomorrow?"
SECOND = "Can you tell me a short story about a cat?"
CHUNK_S = 0.1


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voice-live")
    (tmp / "w.toml").write_text(CONFIG)
    port = free_port()
    proc = ManagedProcess.python_module(
        "wilton_core.router.cli", "--config", str(tmp / "w.toml"), "--port", str(port),
        env={"WILTON_STORE_URL": f"sqlite:///{tmp / 'w.db'}", "HF_HUB_OFFLINE": "1"}, log=tmp / "router.log",
    ).start(f"http://127.0.0.1:{port}/readyz", timeout=90)
    yield port
    proc.stop()


def _pcm16(seconds_or_wav: float | bytes) -> bytes:
    if isinstance(seconds_or_wav, bytes):
        pcm = decode_audio(seconds_or_wav, max_bytes=10_000_000, max_duration_s=60).samples
    else:
        pcm = np.zeros(int(seconds_or_wav * 16000), np.float32)
    return (pcm * 32767).astype("<i2").tobytes()


def test_live_segments_arrive_while_the_speaker_talks(router):
    first, second = speak_wav(FIRST), speak_wav(SECOND)
    audio = _pcm16(0.5) + _pcm16(first) + _pcm16(1.5) + _pcm16(second) + _pcm16(1.5)
    end_first = 0.5 + len(_pcm16(first)) / 32000
    end_all = len(audio) / 32000
    run = asyncio.run(live_transcribe(router, audio, marks=[end_first, end_all], chunk_s=CHUNK_S))
    events, upload_ended, sent_at = run.events, run.upload_ended, run.sent_at
    kinds = [e["type"] for _, e in events]
    finals = [e for _, e in events if e["type"] == "transcript.segment"]
    assert [f["segment"] for f in finals] == [0, 1], kinds
    assert wer(FIRST, finals[0]["text"]) <= 0.5 and wer(SECOND, finals[1]["text"]) <= 0.5, finals
    assert finals[0]["start"] < finals[0]["end"] <= finals[1]["start"] < finals[1]["end"]
    assert events[-1][1]["type"] == "transcript.text.done"
    assert wer(FIRST + " " + SECOND, events[-1][1]["text"]) <= 0.5
    # live: the first utterance's final text came back before the upload ended
    first_final_at = next(t for t, e in events if e["type"] == "transcript.segment")
    assert first_final_at < upload_ended, (first_final_at, upload_ended)
    # streamed, not buffered: the first partial was received before the last chunk was even sent
    # (a server that buffers the body whole would hand the app nothing until after that moment)
    first_partial_at = next(t for t, e in events if e["type"] == "transcript.partial")
    assert first_partial_at < sent_at[end_all], (first_partial_at, sent_at[end_all])
    latency = first_final_at - sent_at[end_first]
    print(f"\nlive: end of speech -> final text {latency:.2f} s (includes the 0.5 s pause that ends it); "
          f"partials: {kinds.count('transcript.partial')}")


def test_live_with_no_embedded_model_is_400(router):
    import httpx

    r = httpx.post(f"http://127.0.0.1:{router}/v1/audio/transcriptions/live?model=nope", content=b"\x00\x00" * 100)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_wiltonctl_voice_ask_times_each_stage(router, tmp_path, capsys):
    import json

    from wilton_core.cli.main import main

    question = tmp_path / "q.wav"
    question.write_bytes(speak_wav(FIRST))
    answer = tmp_path / "a.wav"
    rc = main(["voice", "ask", str(question), "--router-url", f"http://127.0.0.1:{router}", "--out", str(answer),
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert wer(FIRST, out["transcript"]) <= 0.5, out
    # the dummy chat model echoes the question: the spoken answer is the question again
    assert out["answer"] == out["transcript"] and out["models"] == {"stt": "whisper-local", "llm": "chat",
                                                                     "tts": "espeak"}
    assert set(out["stages"]) == {"stt", "llm", "tts_generate", "tts_playback"}
    assert all(v > 0 for v in out["stages"].values()) and out["targets"]["stt"] == 0.8
    spoken = decode_audio(answer.read_bytes(), max_bytes=10_000_000, max_duration_s=60)
    assert spoken.duration_s > 1.0


def test_wiltonctl_voice_ask_reports_errors_in_one_line(router, tmp_path, capsys):
    from wilton_core.cli.main import main

    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"not audio" * 100)
    assert main(["voice", "ask", str(bad), "--router-url", f"http://127.0.0.1:{router}"]) == 2
    err = capsys.readouterr().err
    assert "transcription failed: HTTP 400" in err and "Traceback" not in err
    assert main(["voice", "ask", str(tmp_path / "missing.wav")]) == 2


def test_live_upload_with_a_broken_wav_header_ends_with_an_error_event(router):
    import httpx
    import orjson

    r = httpx.post(f"http://127.0.0.1:{router}/v1/audio/transcriptions/live", content=b"RIFF" + b"\x00" * 6000,
                   timeout=60)
    events = [orjson.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: ")]
    assert r.status_code == 200 and events[-1]["error"]["code"] == "invalid_audio"
