"""bench/voice.py at its smallest: it runs end to end and produces finite numbers (never a speed)."""

from __future__ import annotations

import math

import pytest

from tests.bench.conftest import load_bench

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("faster_whisper", reason="the [voice] extra is not installed")


def test_voice_bench_smoke(tmp_path):
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    bench = load_bench("voice")
    res = bench.run(rounds=1, n_sentences=1, n_live=1)
    assert set(res["stages"]) == {"stt", "llm", "tts_generate", "tts_playback"}
    for v in res["stages"].values():
        assert v["n"] == 1 and math.isfinite(v["p50"]) and v["p50"] > 0
    assert 0.0 <= res["wer_mean"] <= 1.0 and res["live_final_s"]["n"] == 1
    assert "| stt | 1 |" in bench.table(res)
