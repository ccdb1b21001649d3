"""Smoke runs of every bench at tiny sizes: they run end to end and produce numbers.

Never a time threshold here (benches, not timed tests): only that the figures exist, are finite
and are consistent with what was run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from wilton_core.core.control_sim import Phase


def test_control_accuracy_figures(bench: Any, tmp_path: Path) -> None:
    ca = bench("control_accuracy")
    assert ca.binomial_floor(2000, 0.75) == pytest.approx(0.0077, abs=0.0003)  # ~sd·sqrt(2/pi)
    scenarios = {"steps": [Phase(6, 0.75), Phase(6, 0.5)], "outage": [Phase(5), Phase(2, local_down=True), Phase(5)]}
    res = ca.run(200, 2, 2, 0.1, scenarios)
    assert set(res) == set(scenarios)
    for by_policy in res.values():
        assert set(by_policy) == set(ca.POLICIES)
        for figs in by_policy.values():
            assert len(figs) == 2
            for f in figs:
                assert all(math.isfinite(getattr(f, k)) and getattr(f, k) >= 0 for k in ca.FIGURES)
    out = tmp_path / "ctl.json"
    assert ca.main(["--requests", "40", "--seeds", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["summary"]) == set(ca.SCENARIOS)
    assert data["summary"]["steady 0.75"]["controller (ours)"]["window_mae_mean"] >= 0


def test_routing_quality_numbers(bench: Any, tmp_path: Path) -> None:
    rq = bench("routing_quality")
    if not Path(rq.DEFAULT_DATA).exists():
        pytest.skip("routing data not available")
    out = tmp_path / "rq.json"
    assert rq.main(["--quick", "--timing-calls", "30", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["heldout_rows"] > 300
    assert 0.25 < data["quality"]["scorer"]["pgr_25"] <= data["quality"]["oracle"]["pgr_25"]
    assert len(data["latency"]) == 3
    for res in data["latency"].values():
        for name in ("shipped", "v1-style"):
            assert res[name]["p99_us"] >= res[name]["p50_us"] > 0
            assert res[name]["best_of_3_p50_us"] <= res[name]["p50_us"]
        assert res["ratio"]["p50_us"] > 0
    assert set(data["generalisation"]) == set(rq.RECIPES)
    for figs in data["generalisation"].values():
        for split in ("hash_split", "leave_subject_out"):
            assert -1.0 < figs[split]["pgr_25"] < 2.0
    assert set(data["ood_groups"]) <= {"stem", "humanities", "social_sciences", "other"}
    assert len(data["ood_groups"]) >= 3
    for row in data["ood_groups"].values():
        assert 0.0 <= row["mean_trust"] <= 1.0 and row["rows"] > 0
        assert row["guarded_minus_prior_se"] >= 0.0


def test_store_insert_sqlite(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    si = bench("store_insert")
    assert si.main(["--rows", "600", "--batch", "100", "--backends", "sqlite"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("sqlite"))
    assert "600" in line and line.split()[2].replace(",", "").isdigit()


@pytest.mark.postgres
def test_store_insert_postgres(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    si = bench("store_insert")
    assert si.main(["--rows", "300", "--batch", "100", "--backends", "postgres"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("postgres"))
    assert "skipped" not in line and "failed" not in line, line


def test_exporter_scrape_small(bench: Any, capsys: pytest.CaptureFixture[str]) -> None:
    es = bench("exporter_scrape")
    assert es.main(["--sizes", "2000", "--scrapes", "2"]) == 0
    rows = [ln.split("|") for ln in capsys.readouterr().out.splitlines()
            if "|" in ln and ln.split("|")[0].strip().replace(",", "").isdigit()]
    assert len(rows) == 1 and int(rows[0][0].replace(",", "")) >= 2000  # + one real insert_ledger batch
    assert float(rows[0][2]) > 0  # median scrape ms


def test_store_slow_arms(bench: Any, tmp_path: Path) -> None:
    ss = bench("store_slow")
    out = tmp_path / "slow.json"
    assert ss.main(["--rounds", "1", "--requests", "20", "--concurrency", "2", "--delay-ms", "5",
                    "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["ledger_written"] == data["sent"] == 40
    assert data["slow_store_calls"] > 0  # the slow arm really went through the slow store
    for arm in ("fast", "slow"):
        assert data[arm]["errors"] == 0 and data[arm]["requests"] == 20
        assert data[arm]["overhead_p50_ms"] > 0


def test_slow_store_wrapper_sleeps_only_on_store_calls(bench: Any) -> None:
    ss = bench("store_slow")
    slept: list[float] = []

    class Inner:
        url = "x"

        def insert_ledger(self, rows: list[int]) -> int:
            return len(rows)

    s = ss.SlowStore(Inner(), 0.05, sleep=slept.append)
    assert s.url == "x" and slept == []
    assert s.insert_ledger([1, 2]) == 2 and slept == [0.05] and s.slow_calls == 1


def test_insight_summary_small(bench: Any, tmp_path: Path) -> None:
    ins = bench("insight_summary")
    out = tmp_path / "ins.json"
    assert ins.main(["--sizes", "3000", "--runs", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["ledger_rows"] == 3000 and row["window_rows"] == 3000  # 0.1 s apart: all within 24 h
    assert row["requests_counted"] == 3000 and row["median_s"] > 0
