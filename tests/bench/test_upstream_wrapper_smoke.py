"""bench/upstream_wrapper.py runs and prints a figure for every case (no thresholds: see docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "upstream_wrapper.py"


def test_bench_prints_every_case() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--rounds", "1", "--calls", "200"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    cases = {line.split()[0]: float(line.split()[1]) for line in lines[1:]}
    assert set(cases) == {"plain", "upstream_call", "deadline", "both", "request_scope"}
    assert all(v > 0 for v in cases.values())
