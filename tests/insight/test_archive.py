"""Report storage, kv bookkeeping and the opt-in prompt table, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wilton_core.insight.archive import (
    StorePromptSource,
    get_report,
    list_reports,
    next_last_run,
    save_report,
    unique_id,
)
from wilton_core.insight.report import InsightReport, render_markdown, write_files
from wilton_core.store.sqlite import SqliteStore


def make_report(rid: str, created_at: float, status: str = "ok") -> InsightReport:
    stats: dict[str, Any] = {
        "totals": {"requests": 4, "local_requests": 3, "tokens": 40, "cost_usd": 0.01, "errors": 0, "error_rate": 0.0},
        "phi": {"target": 0.75, "basis": "requests", "measured": 0.75, "trajectory": [], "source": "ledger",
                "off_target_s": 0.0, "off_target_share": 0.0, "observed_s": 60.0},
        "controller": {"steps": 0, "threshold_min": None, "threshold_max": None, "threshold_last": None,
                       "mean_abs_error": None},
        "tiers": [], "latency_target_s": 2.0, "latency": [], "providers": [], "rate_limit_episodes": [],
        "costliest": [], "anomalies": [], "notes": [],
    }
    return InsightReport(id=rid, created_at=created_at, since=created_at - 3600, until=created_at, status=status,
                         reason=None if status == "ok" else "auth: no key", backend="openai",
                         model="gpt-4o" if status == "ok" else None, stats=stats,
                         analysis="## Explanation\nfine" if status == "ok" else None)


def test_next_last_run_counts_and_keeps_last_success() -> None:
    a = next_last_run(None, ts=10.0, ok=True, reason=None)
    b = next_last_run(json.dumps(a), ts=20.0, ok=False, reason="rate_limited: 429")
    c = next_last_run(json.dumps(b), ts=30.0, ok=False, reason="unavailable")
    assert a == {"ts": 10.0, "ok": True, "runs_ok": 1, "runs_failed": 0, "last_success_ts": 10.0, "reason": None}
    assert (c["runs_ok"], c["runs_failed"], c["last_success_ts"], c["reason"]) == (1, 2, 10.0, "unavailable")
    for garbage in ("not json", "[1]", json.dumps({"runs_ok": "x", "runs_failed": -3})):
        d = next_last_run(garbage, ts=1.0, ok=False, reason="r")
        assert (d["runs_ok"], d["runs_failed"], d["last_success_ts"]) == (0, 1, None)


def test_write_files_markdown_and_json(tmp_path: Path) -> None:
    r = make_report("20240101T000000Z", 1_704_067_200.0, status="stats_only")
    md, js = write_files(r, tmp_path / "reports")
    assert md.name == "insight-20240101T000000Z.md" and js.name == "insight-20240101T000000Z.json"
    assert md.read_text() == render_markdown(r) and "**Statistics only**" in md.read_text()
    assert InsightReport.from_dict(json.loads(js.read_text())) == r
    assert not list((tmp_path / "reports").glob("*.tmp"))


def exercise(store: Any) -> None:
    store.migrate()
    save_report(store, make_report("20240101T000000Z", 1_704_067_200.0))
    assert unique_id(store, "20240101T000000Z") == "20240101T000000Z-2"
    save_report(store, make_report("20240101T000000Z-2", 1_704_067_200.5, status="stats_only"))
    save_report(store, make_report("20240102T000000Z", 1_704_153_600.0))
    assert [s.id for s in list_reports(store)] == ["20240102T000000Z", "20240101T000000Z-2", "20240101T000000Z"]
    assert [s.id for s in list_reports(store, limit=1)] == ["20240102T000000Z"]
    latest = get_report(store, "latest")
    assert latest is not None and latest[0].id == "20240102T000000Z"
    exact = get_report(store, "20240101T000000Z")
    assert exact is not None and exact[0].status == "ok"
    prefix = get_report(store, "20240102")
    assert prefix is not None and prefix[0].id == "20240102T000000Z"
    assert get_report(store, "20240101") is None      # ambiguous prefix
    assert get_report(store, "nope") is None
    store.execute("INSERT INTO request_prompts (request_id, ts, prompt) VALUES (?, ?, ?)", ("r1", 1.0, "hello"))
    assert StorePromptSource(store)(["r1", "r2"]) == {"r1": "hello"}
    assert StorePromptSource(store)([]) == {}


def test_archive_on_sqlite(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    try:
        exercise(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_archive_on_postgres(pg_url: str) -> None:
    from wilton_core.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        exercise(store)
    finally:
        store.close()
