"""The store path (`scan_window`, SQL) against the in-memory path (`aggregate_ledger`) on the same
rows, on SQLite and PostgreSQL; and what stays bounded when the window is large."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wilton_core.insight.sql_stats import scan_window
from wilton_core.insight.stats import (
    ControlColumns,
    WindowAggregates,
    latency_by_model,
    summarize,
)
from wilton_core.store.sql import SqlStore
from wilton_core.store.sqlite import SqliteStore
from wilton_core.types import LedgerRecord

from .ledger_oracle import LedgerColumns, aggregate_ledger

T0 = 1_700_000_000.0
SINCE, UNTIL = T0, T0 + 3 * 3600 + 30   # not a whole number of minutes
MODELS = [  # (model, tier, provider, is_local, share)
    ("local-small", "selfhost", "ollama", True, 0.6),
    ("local-big", "selfhost", "llamacpp", True, 0.15),
    ("groq-8b", "edge", "groq", False, 0.12),
    ("gpt-4o", "frontier", "openai", False, 0.12),
    ("claude", "frontier", "anthropic", False, 0.01),
]


def synthetic(n: int, seed: int = 3) -> list[LedgerRecord]:
    """A messy window: errors of several classes, a rate-limit burst, fallbacks, a rare model,
    rows outside the window on both sides, and insertion order that is not time order."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = rnd.uniform(SINCE - 600, UNTIL + 600)
        model, tier, prov, local, _ = rnd.choices(MODELS, weights=[m[4] for m in MODELS])[0]
        status, err = "ok", None
        burst = prov == "openai" and T0 + 3600 <= ts < T0 + 3600 + 900
        if burst and rnd.random() < 0.7:
            status, err = "error", "rate_limited"
        elif rnd.random() < 0.03:
            status, err = rnd.choice([("error", "unavailable"), ("error", "timeout"), ("stream_error", "upstream")])
        out.append(LedgerRecord(
            ts=ts, request_id=f"r{i}", model_id=model, tier=tier, is_local=local, provider=prov,
            latency_s=rnd.lognormvariate(-1.0 if local else 0.3, 0.6), tokens_in=rnd.randint(5, 900),
            tokens_out=rnd.randint(0, 400), cost_usd=0.0 if local else round(rnd.uniform(0, 0.02), 6),
            status=status, error_class=err, fallbacks=rnd.choice([0, 0, 0, 0, 1, 2]),
        ))
    # A latency exactly on the target and a cost tie broken by tokens.
    out.append(LedgerRecord(ts=T0 + 100, request_id="on-target", model_id="gpt-4o", tier="frontier",
                            is_local=False, provider="openai", latency_s=2.0, cost_usd=0.5, tokens_in=10))
    out.append(LedgerRecord(ts=T0 + 101, request_id="tie-more", model_id="gpt-4o", tier="frontier",
                            is_local=False, provider="openai", latency_s=1.0, cost_usd=0.5, tokens_in=20))
    return out


def columns(records: Sequence[LedgerRecord]) -> LedgerColumns:
    return LedgerColumns.from_mapping({
        "ts": [r.ts for r in records], "request_id": [r.request_id for r in records],
        "model_id": [r.model_id for r in records], "tier": [r.tier for r in records],
        "is_local": [r.is_local for r in records], "provider": [r.provider for r in records],
        "latency_s": [r.latency_s for r in records], "tokens_in": [r.tokens_in for r in records],
        "tokens_out": [r.tokens_out for r in records], "cost_usd": [r.cost_usd for r in records],
        "status": [r.status for r in records], "error_class": [r.error_class for r in records],
        "fallbacks": [r.fallbacks for r in records],
    })


class CountingStore:
    """The store as the insight hook sees it, counting queries and the rows they bring into Python."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.queries = 0
        self.rows_read = 0

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows = self.inner.query(sql, params)
        self.queries += 1
        self.rows_read += len(rows)
        return rows


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "w.db")
    s.migrate()
    yield s
    s.close()


def assert_same(sql: WindowAggregates, mem: WindowAggregates) -> None:
    assert sql.rows == mem.rows and not sql.latency_sampled
    assert len(sql.groups) == len(mem.groups)
    for a, b in zip(sql.groups, mem.groups, strict=True):
        da, db = asdict(a), asdict(b)
        for k in ("cost_usd", "ok_latency_sum_s"):
            assert da.pop(k) == pytest.approx(db.pop(k), rel=1e-9, abs=1e-12)
        assert da == db
    assert [asdict(c) for c in sql.costliest] == [asdict(c) for c in mem.costliest]
    assert set(sql.latency_samples) == set(mem.latency_samples)
    for m, v in mem.latency_samples.items():
        assert np.sort(sql.latency_samples[m]) == pytest.approx(np.sort(v))


def check_equivalence(store: SqlStore) -> None:
    records = synthetic(6000)
    for k in range(0, len(records), 500):
        store.insert_ledger(records[k:k + 500])
    mem = aggregate_ledger(columns(records), SINCE, UNTIL, latency_target_s=2.0, max_costly=7)
    sql = scan_window(store, SINCE, UNTIL, latency_target_s=2.0, max_costly=7)
    assert 5000 < sql.rows < 6000 and sql.costliest[0].request_id == "tie-more"
    assert_same(sql, mem)
    control = ControlColumns.from_rows([])
    for basis in ("requests", "tokens"):
        a = summarize(sql, control, phi_target=0.75, basis=basis).to_dict()
        b = summarize(mem, control, phi_target=0.75, basis=basis).to_dict()
        assert _close(a, b)
    st = summarize(sql, control, phi_target=0.75)
    openai = [e for e in st.rate_limit_episodes if e.provider == "openai"]
    assert openai and openai[0].start >= T0 + 3600 and max(e.end for e in openai) < T0 + 3600 + 900
    empty = scan_window(store, T0 - 10 * 86400, T0 - 9 * 86400, latency_target_s=2.0)
    assert empty.rows == 0 and summarize(empty, control, phi_target=0.75).totals.requests == 0


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert len(a) == len(b)
        return all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12) or (math.isnan(a) and math.isnan(b))
        return True
    assert a == b
    return True


def test_sql_and_memory_paths_agree_on_sqlite(sqlite_store: SqliteStore) -> None:
    check_equivalence(sqlite_store)


@pytest.mark.postgres
def test_sql_and_memory_paths_agree_on_postgres(pg_url: str) -> None:
    from wilton_core.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        store.migrate()
        check_equivalence(store)
    finally:
        store.close()


def test_a_window_above_the_sample_cap_reads_a_bounded_number_of_rows(sqlite_store: SqliteStore) -> None:
    records = synthetic(8000, seed=11)
    sqlite_store.insert_ledger(records)
    mem = aggregate_ledger(columns(records), SINCE, UNTIL, latency_target_s=2.0, max_costly=5)
    counting = CountingStore(sqlite_store)
    agg = scan_window(counting, SINCE, UNTIL, latency_target_s=2.0, max_costly=5, sample_cap=500,
                      min_per_model=60, topup_minutes=10)
    assert agg.latency_sampled and agg.notes and "claude" in agg.notes[0]   # the rare model was topped up
    # what reaches Python: the groups, the costliest, ~sample_cap latencies and the top-ups
    assert counting.rows_read <= len(agg.groups) + 1 + 5 + 500 + 5 * 60 + 60
    assert counting.queries <= 4 + 10 * len(MODELS)
    # exact where promised: every group and the costliest; the sample only moves percentiles
    assert _close([asdict(g) for g in agg.groups], [asdict(g) for g in mem.groups])
    assert sum(g.requests for g in agg.groups) == mem.rows == agg.rows
    assert [c.request_id for c in agg.costliest] == [c.request_id for c in mem.costliest]
    exact = {m.model_id: m for m in latency_by_model(mem)}
    for m in latency_by_model(agg):
        e = exact[m.model_id]
        assert (m.requests, m.over_target_share) == (e.requests, e.over_target_share)
        assert m.p50_s == pytest.approx(e.p50_s, rel=0.25) and m.p95_s == pytest.approx(e.p95_s, rel=0.35)
    assert {m.model_id for m in latency_by_model(agg)} == set(exact)


def test_the_sample_does_not_alias_with_periodic_traffic(sqlite_store: SqliteStore) -> None:
    # every 4th request goes to the API model: a stride of 10 ids at a fixed offset would only
    # ever see ids of two residues mod 4 and could miss gpt-4o entirely
    sqlite_store.insert_ledger([
        LedgerRecord(ts=T0 + i, request_id=f"p{i}", model_id="gpt-4o" if i % 4 == 3 else "local-small",
                     tier="frontier" if i % 4 == 3 else "selfhost", is_local=i % 4 != 3, provider="x",
                     latency_s=3.0 if i % 4 == 3 else 0.3)
        for i in range(4000)
    ])
    agg = scan_window(sqlite_store, T0, T0 + 4000, latency_target_s=2.0, sample_cap=400, min_per_model=50)
    assert agg.latency_sampled and "topped up" not in agg.notes[0]
    n = {m: v.size for m, v in agg.latency_samples.items()}
    assert 60 <= n["gpt-4o"] <= 140 and n["local-small"] >= 250
