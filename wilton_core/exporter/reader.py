"""Read one scrape's `Snapshot` from the store: bounded queries only.

Every read here is O(aggregate keys) or O(window): the aggregate tables (one row per
tier/model/intent/status key), the single control-state row, a handful of kv keys, the
model_status table (one row per configured model) and the ledger_rollup rows inside the window
(an indexed range on its primary key). The ledger itself is never touched.
"""

from __future__ import annotations

import json
import math
from typing import Any

from wilton_core.exporter.snapshot import KeyRow, ModelStatusRow, Snapshot, WindowTotals

__all__ = ["INSIGHT_KEY", "ROUTER_HEALTH_PREFIX", "read_snapshot", "read_window"]

ROUTER_HEALTH_PREFIX = "router_health:"
INSIGHT_KEY = "insight:last_run"


def read_window(store: Any, now: float, window_s: float) -> WindowTotals:
    # whole rollup buckets only: the partial second at each edge is noise at a 5-minute window
    since = math.floor(now - window_s)
    until = math.floor(now) + 1
    w = WindowTotals(since=since, until=until)
    rows = store.query(
        "SELECT is_local, SUM(requests), SUM(tokens), SUM(errors), SUM(cost_usd) FROM ledger_rollup"
        " WHERE bucket_ts >= ? AND bucket_ts < ? GROUP BY is_local",
        (since, until),
    )
    for is_local, requests, tokens, errors, cost in rows:
        if int(is_local):
            w.local_requests, w.local_tokens = int(requests or 0), int(tokens or 0)
        else:
            w.api_requests, w.api_tokens = int(requests or 0), int(tokens or 0)
        w.errors += int(errors or 0)
        w.cost_usd += float(cost or 0.0)
    last = store.query_one("SELECT MAX(bucket_ts) FROM ledger_rollup")
    if last is not None and last[0] is not None:
        w.last_bucket_ts = float(last[0])
    return w


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None  # a half-written or foreign value must not break the scrape
    return doc if isinstance(doc, dict) else None


def _router_health(store: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in store.kv_items(ROUTER_HEALTH_PREFIX).items():
        replica = str(key)[len(ROUTER_HEALTH_PREFIX):]
        doc = _json_object(value)
        if replica and doc is not None:
            out[replica] = doc
    return out


def _model_status(store: Any) -> list[ModelStatusRow]:
    rows = store.query("SELECT model_id, status, latency_ms, tested_at FROM model_status")
    return [
        ModelStatusRow(
            model_id=str(m),
            status=str(s),
            latency_ms=None if lat is None else float(lat),
            tested_at=None if at is None else float(at),
        )
        for m, s, lat, at in rows
    ]


def _keys(store: Any, now: float) -> list[KeyRow]:
    """Per client key (bounded: one row per key ever created, by name) plus the keyless local-only row."""
    from wilton_core.access.keys import KeyRepo

    repo = KeyRepo(store)
    keys = repo.all()
    usage = repo.usage(keys, now)
    out = []
    for k in keys:
        u = usage[k.id]
        out.append(KeyRow(k.name, u.requests, u.refused, u.tokens, u.local_only, u.total_cost_usd, k.budget_usd,
                          k.budget_period, u.period_cost_usd if k.budget_usd is not None else None))
    row = store.query_one("SELECT COALESCE(CAST(SUM(requests) AS BIGINT), 0), COALESCE(CAST(SUM(local_only) AS"
                          " BIGINT), 0) FROM api_key_usage WHERE key_id = ''")
    if row is not None and int(row[0]):
        out.append(KeyRow("", int(row[0]), 0, 0, int(row[1]), 0.0))
    return out


def read_snapshot(store: Any, now: float, window_s: float) -> Snapshot:
    return Snapshot(
        now=now,
        aggregates=store.aggregates(),
        window=read_window(store, now, window_s),
        control=store.get_control_state(),
        router_health=_router_health(store),
        model_status=_model_status(store),
        insight=_json_object(store.kv_get(INSIGHT_KEY)),
        keys=_keys(store, now),
    )
