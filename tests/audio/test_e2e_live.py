"""Live transcription end to end: speech uploaded in real time (chunked), segments back as SSE
while the upload goes on. The router runs on uvicorn, which hands the app each body chunk as it
arrives (the fast server buffers a request body whole: docs/voice.md)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import orjson
import pytest

from wilton_core.audio.decode import decode_audio
from wilton_core.audio.wer import wer
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
        "wilton_core.router.cli", "--config", str(tmp / "w.toml"), "--port", str(port), "--server", "uvicorn",
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


async def _live(port: int, audio: bytes, speech_end_s: list[float]) -> tuple[list[tuple[float, dict]], float, dict]:
    """Upload `audio` in real time; return (events with arrival times), upload end time, and the
    wall time each speech end in `speech_end_s` (audio seconds) was sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/audio/transcriptions/live HTTP/1.1\r\nhost: x\r\ncontent-type: audio/pcm\r\n"
                 b"transfer-encoding: chunked\r\n\r\n")
    step = int(CHUNK_S * 16000) * 2
    sent_at: dict[float, float] = {}
    events: list[tuple[float, dict]] = []

    async def upload() -> float:
        t0 = time.monotonic()
        for i in range(0, len(audio), step):
            # real time: chunk i leaves when its audio would have been recorded
            await asyncio.sleep(max(0.0, t0 + i / 32000 - time.monotonic()))
            chunk = audio[i:i + step]
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            for end in speech_end_s:
                if end not in sent_at and (i + len(chunk)) / 32000 >= end:
                    sent_at[end] = time.monotonic()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return time.monotonic()

    async def download() -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        assert head.startswith(b"HTTP/1.1 200"), head
        buf = b""
        while True:
            data = await asyncio.wait_for(reader.read(65536), 120)
            if not data:
                return
            buf += data
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    # chunked framing lines interleave; keep the SSE data lines
                    if line.startswith(b"data: "):
                        ev = orjson.loads(line[6:])
                        events.append((time.monotonic(), ev))
                        if ev.get("type") == "transcript.text.done":
                            return

    up = asyncio.create_task(upload())
    await asyncio.wait_for(download(), 180)
    ended = await up
    writer.close()
    return events, ended, sent_at


def test_live_segments_arrive_while_the_speaker_talks(router):
    first, second = speak_wav(FIRST), speak_wav(SECOND)
    audio = _pcm16(0.5) + _pcm16(first) + _pcm16(1.5) + _pcm16(second) + _pcm16(1.5)
    end_first = 0.5 + len(_pcm16(first)) / 32000
    events, upload_ended, sent_at = asyncio.run(_live(router, audio, [end_first]))
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
