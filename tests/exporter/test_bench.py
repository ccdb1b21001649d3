"""bench/exporter_scrape.py runs end to end on a small SQLite store and prints its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "exporter_scrape.py"


def test_bench_fills_and_times(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("exporter_scrape_bench", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--sizes", "3000", "--scrapes", "3"]) == 0
    out = capsys.readouterr().out
    # 2,000 rows through insert_ledger + 3,000 bulk rows
    row = next(line for line in out.splitlines() if line.strip().startswith("5,000"))
    median_ms = float(row.split("|")[2])
    assert 0 < median_ms < 1000
