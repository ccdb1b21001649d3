"""bench/gateway_overhead.py runs end to end for a few seconds (direct and router arms, c=1).

Asserts only that it produces numbers and no errors: wall-clock thresholds do not belong in CI.
Uses the in-process Python load generator so the test does not depend on `wrk` being installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gateway_overhead.py"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("stream", [False, True])
def test_bench_produces_numbers_with_zero_errors(tmp_path: Path, stream: bool) -> None:
    out = tmp_path / "result.json"
    argv = [sys.executable, str(BENCH), "--seconds", "1", "--rounds", "1", "--concurrency", "1", "--no-litellm",
            "--loadgen", "python", "--json", str(out)] + (["--only-stream"] if stream else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    arms = {s["arm"]: s for s in report["summary"]}
    assert set(arms) == {"direct", "router"}
    for s in arms.values():
        assert s["errors"] == 0
        assert s["rps"] > 0 and s["p50_ms"] > 0 and s["p99_ms"] >= s["p50_ms"]
    assert arms["router"]["added_p50_ms"] is not None
    assert arms["router"]["peak_rss_mb"] > 0
    assert arms["router"]["cpu_us_per_req"] > 0 and arms["direct"]["cpu_us_per_req"] is None
    # the event loop's share is part of the process's CPU, never more
    assert 0 < arms["router"]["loop_cpu_us_per_req"] <= 1.05 * arms["router"]["cpu_us_per_req"]
    assert "litellm arm skipped" in " ".join(report["notes"])
    assert "router" in proc.stdout and "req/s" in proc.stdout
