"""The window's aggregates computed by the store: bounded memory, a fixed number of queries.

`scan_window(store, since, until, ...)` returns the window's `WindowAggregates` (checked against
the in-memory oracle in tests/insight/ledger_oracle.py) with no per-request data in Python:

1. bounds — `COUNT(*), MIN(id), MAX(id)` of the window, an index-only range on `ledger_ts_idx`;
2. groups — one `GROUP BY minute, model, tier, provider, error_class` pass over the window's id
   range (a sequential read, about twice as fast on SQLite as fetching each row through the ts
   index); exact counts and sums, and a result whose size follows minutes x keys, not requests;
3. costliest — `ORDER BY cost_usd DESC ... LIMIT n` over the same range;
4. latency sample — every successful latency when the window holds at most `sample_cap` of
   them (so small windows are exact), else one id per stride of k ids of the window's id range
   (k chosen for about `sample_cap` rows, read by primary key, so its cost does not grow with the
   window; the offset inside each stride is hashed so periodic traffic cannot alias), topped up
   for any model the sample left with fewer than `min_per_model` latencies from up to
   `topup_minutes` of the minutes it served.

Why not ledger_rollup: it holds per-second served totals split only by is_local, so the window
scan is needed anyway for models, providers, error classes and latency, and that same pass gives
exact per-minute series with the report's own definitions (phi over every row, error rate over
every row). SQL is portable: `?` placeholders; the only dialect difference is how a minute index
is floored (PostgreSQL rounds a CAST to integer, SQLite truncates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from wilton_core.insight.stats import MINUTE_S, CostlyRequest, MinuteGroup, WindowAggregates

__all__ = ["SAMPLE_CAP", "WindowStore", "scan_window"]

SAMPLE_CAP = 100_000


class WindowStore(Protocol):
    dialect: str

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def _count(cond: str) -> str:
    # CAST: PostgreSQL widens SUM(integer) to bigint and SUM(bigint) to numeric (a Decimal).
    return f"CAST(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS BIGINT)"


def _minute_expr(dialect: str) -> str:
    if dialect == "postgres":
        return "CAST(FLOOR((ts - ?) / ?) AS BIGINT)"
    return "CAST((ts - ?) / ? AS INTEGER)"   # ts >= since, so truncation is the floor


# `+ts` keeps SQLite from walking ledger_ts_idx row by row: the id range (from the bounds query)
# is read sequentially instead, and the ts condition still decides which rows belong.
_RANGE = "FROM ledger WHERE id >= ? AND id <= ? AND +ts >= ? AND +ts < ?"

_OK = "status = 'ok'"
_GROUPS = f"""
SELECT {{minute}} AS minute, model_id, tier, provider, COALESCE(error_class, '') AS error_class,
       COUNT(*), {_count("status <> 'ok'")}, {_count("is_local = 1")},
       CAST(SUM(tokens_in + tokens_out) AS BIGINT),
       CAST(SUM(CASE WHEN is_local = 1 THEN tokens_in + tokens_out ELSE 0 END) AS BIGINT),
       SUM(cost_usd), {_count("fallbacks > 0")}, {_count(_OK)},
       SUM(CASE WHEN {_OK} THEN latency_s ELSE 0 END), {_count(f"{_OK} AND latency_s > ?")},
       MIN(ts), MAX(ts)
{_RANGE}
GROUP BY 1, 2, 3, 4, 5
"""
_COSTLIEST = f"""
SELECT request_id, ts, model_id, cost_usd, tokens_in, tokens_out
{_RANGE} AND cost_usd > 0
ORDER BY cost_usd DESC, tokens_in + tokens_out DESC, ts, id
LIMIT ?
"""
_ALL_LATENCIES = f"SELECT model_id, latency_s {_RANGE} AND {_OK}"
# One id per stride of `step` ids, at a pseudo-random offset inside the stride (a multiplicative
# hash of the stride number): a fixed offset would alias with periodic traffic (round robin, or a
# generator's "every 4th request goes to the API") and could miss a model entirely.
_SAMPLE = """
WITH RECURSIVE pick(k) AS (
    SELECT CAST(0 AS BIGINT)
    UNION ALL SELECT k + 1 FROM pick WHERE k + 1 < CAST(? AS BIGINT)
)
SELECT l.model_id, l.latency_s FROM pick
JOIN ledger l ON l.id = CAST(? AS BIGINT) + pick.k * CAST(? AS BIGINT) + (pick.k * 2654435761) % CAST(? AS BIGINT)
WHERE l.ts >= ? AND l.ts < ? AND l.status = 'ok'
"""
_TOPUP = "SELECT latency_s FROM ledger WHERE ts >= ? AND ts < ? AND model_id = ? AND status = 'ok' LIMIT ?"


def scan_window(
    store: WindowStore,
    since: float,
    until: float,
    *,
    latency_target_s: float,
    max_costly: int = 10,
    minute_s: float = MINUTE_S,
    sample_cap: int = SAMPLE_CAP,
    min_per_model: int = 400,
    topup_minutes: int = 20,
) -> WindowAggregates:
    """Aggregates of the ledger rows with since <= ts < until (see the module docstring)."""
    bounds = store.query("SELECT COUNT(*), MIN(id), MAX(id) FROM ledger WHERE ts >= ? AND ts < ?", (since, until))
    rows = int(bounds[0][0]) if bounds else 0
    if rows == 0:
        return WindowAggregates.empty(since, until, latency_target_s, minute_s)
    lo, hi = int(bounds[0][1]), int(bounds[0][2])
    rng = (lo, hi, since, until)

    groups = [
        MinuteGroup(
            int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), requests=int(r[5]), errors=int(r[6]),
            local=int(r[7]), tokens=int(r[8] or 0), local_tokens=int(r[9] or 0), cost_usd=float(r[10] or 0.0),
            fallback_rows=int(r[11]), ok_latency=int(r[12]), ok_latency_sum_s=float(r[13] or 0.0),
            over_target=int(r[14]), first_ts=float(r[15]), last_ts=float(r[16]),
        )
        for r in store.query(_GROUPS.format(minute=_minute_expr(store.dialect)),
                             (since, minute_s, latency_target_s, *rng))
    ]
    groups.sort(key=lambda g: (g.minute, g.model_id, g.tier, g.provider, g.error_class))

    costliest = [
        CostlyRequest(str(r[0]), float(r[1]), str(r[2]), float(r[3]), int(r[4]), int(r[5]))
        for r in (store.query(_COSTLIEST, (*rng, int(max_costly))) if max_costly > 0 else [])
    ]

    ok_total = sum(g.ok_latency for g in groups)
    notes: list[str] = []
    if ok_total <= sample_cap:
        samples = _collect(store.query(_ALL_LATENCIES, rng))
        sampled = False
    else:
        step = max(1, math.ceil((hi - lo + 1) / sample_cap))
        strides = math.ceil((hi - lo + 1) / step)
        samples = _collect(store.query(_SAMPLE, (strides, lo, step, step, since, until)))
        topped = _top_up(store, groups, samples, since, until, minute_s, min_per_model, topup_minutes)
        sampled = True
        notes.append(
            f"latency p50/p95 from a sample of {sum(v.size for v in samples.values()):,} of {ok_total:,} "
            f"successful requests (one ledger id in every {step}"
            + (f"; {', '.join(topped)} topped up from {topup_minutes} of their minutes" if topped else "")
            + "); counts and the share over target are exact"
        )
    return WindowAggregates(since, until, minute_s, latency_target_s, rows, groups, samples, costliest,
                            latency_sampled=sampled, notes=notes)


def _collect(rows: Sequence[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    by_model: dict[str, list[float]] = {}
    for model, lat in rows:
        if lat is not None and math.isfinite(float(lat)):
            by_model.setdefault(str(model), []).append(float(lat))
    return {m: np.array(v, dtype=np.float64) for m, v in by_model.items()}


def _top_up(
    store: WindowStore,
    groups: Sequence[MinuteGroup],
    samples: dict[str, np.ndarray],
    since: float,
    until: float,
    minute_s: float,
    min_per_model: int,
    topup_minutes: int,
) -> list[str]:
    """A rare model gets few rows in an every-k-th-id sample: read up to `min_per_model` of its
    latencies from evenly spread minutes it served, each an indexed ts range stopped by LIMIT."""
    minutes_of: dict[str, list[int]] = {}
    served: dict[str, int] = {}
    for g in groups:
        if g.ok_latency:
            minutes_of.setdefault(g.model_id, []).append(g.minute)
            served[g.model_id] = served.get(g.model_id, 0) + g.ok_latency
    topped = []
    for model, minutes in sorted(minutes_of.items()):
        have = samples.get(model, np.zeros(0)).size
        if have >= min(min_per_model, served[model]):
            continue
        distinct = sorted(set(minutes))
        picks = [distinct[int(j * len(distinct) / topup_minutes)] for j in range(topup_minutes)] \
            if len(distinct) > topup_minutes else distinct
        per_minute = math.ceil(min_per_model / len(picks))
        got: list[float] = []
        for m in sorted(set(picks)):
            start = since + m * minute_s
            got += [float(r[0]) for r in store.query(_TOPUP, (start, min(until, start + minute_s), model, per_minute))
                    if r[0] is not None and math.isfinite(float(r[0]))]
        if len(got) > have:
            samples[model] = np.array(got, dtype=np.float64)
            topped.append(model)
    return topped
