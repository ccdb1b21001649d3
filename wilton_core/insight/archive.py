"""Insight reports in the shared store (table insight_reports, migration 0020) and the
run bookkeeping the exporter reads (kv "insight:last_run")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from wilton_core.insight.report import InsightReport, render_markdown

__all__ = [
    "LAST_RUN_KEY",
    "ReportSummary",
    "StorePromptSource",
    "get_report",
    "list_reports",
    "next_last_run",
    "save_report",
    "unique_id",
]

LAST_RUN_KEY = "insight:last_run"


class SqlStore(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...


@dataclass(slots=True, frozen=True)
class ReportSummary:
    id: str
    created_at: float
    status: str
    reason: str | None
    backend: str
    model: str | None


def unique_id(store: SqlStore, base: str) -> str:
    """`base`, or `base-2`, `base-3`... when a report already has that id (two runs in a second)."""
    candidate, n = base, 1
    while store.query_one("SELECT 1 FROM insight_reports WHERE id = ?", (candidate,)) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def save_report(store: SqlStore, r: InsightReport) -> None:
    store.execute(
        "INSERT INTO insight_reports (id, created_at, window_start, window_end, status, reason, backend,"
        " model, markdown, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (r.id, r.created_at, r.since, r.until, r.status, r.reason, r.backend, r.model,
         render_markdown(r), r.to_json()),
    )


def list_reports(store: SqlStore, limit: int = 20) -> list[ReportSummary]:
    rows = store.query(
        "SELECT id, created_at, status, reason, backend, model FROM insight_reports"
        " ORDER BY created_at DESC, id DESC LIMIT ?", (int(limit),),
    )
    return [ReportSummary(str(i), float(c), str(s), r, str(b), m) for i, c, s, r, b, m in rows]


def get_report(store: SqlStore, ref: str = "latest") -> tuple[InsightReport, str] | None:
    """(report, markdown) by id, unique id prefix, or "latest"."""
    if ref == "latest":
        row = store.query_one("SELECT body, markdown FROM insight_reports ORDER BY created_at DESC, id DESC LIMIT 1")
    else:
        row = store.query_one("SELECT body, markdown FROM insight_reports WHERE id = ?", (ref,))
        if row is None:
            rows = store.query("SELECT body, markdown FROM insight_reports WHERE id LIKE ? LIMIT 2", (ref + "%",))
            row = rows[0] if len(rows) == 1 else None
    if row is None:
        return None
    return InsightReport.from_dict(json.loads(row[0])), str(row[1])


def next_last_run(previous: str | None, *, ts: float, ok: bool, reason: str | None) -> dict[str, Any]:
    """The new kv "insight:last_run" document from the previous one (pure)."""
    try:
        prev = json.loads(previous) if previous else {}
    except ValueError:
        prev = {}
    if not isinstance(prev, dict):
        prev = {}

    def count(key: str) -> int:
        v = prev.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0

    return {
        "ts": ts,
        "ok": ok,
        "runs_ok": count("runs_ok") + (1 if ok else 0),
        "runs_failed": count("runs_failed") + (0 if ok else 1),
        "last_success_ts": ts if ok else prev.get("last_success_ts"),
        "reason": None if ok else reason,
    }


class StorePromptSource:
    """Prompt text for request ids from the opt-in `request_prompts` table (migration 0021)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def __call__(self, request_ids: Sequence[str]) -> dict[str, str]:
        if not request_ids:
            return {}
        marks = ", ".join("?" for _ in request_ids)
        rows = self._store.query(
            f"SELECT request_id, prompt FROM request_prompts WHERE request_id IN ({marks})", tuple(request_ids)
        )
        found = {str(r): str(p) for r, p in rows}
        return {rid: found[rid] for rid in request_ids if rid in found}
