"""The test oracle of the insight statistics: the window's aggregates computed in memory, row by
row, the obvious way. `wilton_core.insight.sql_stats.scan_window` (the one producer the product
uses: SQL over the store) must agree with it on every synthetic ledger the tests build."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wilton_core.insight.stats import (
    MINUTE_S,
    ControlColumns,
    CostlyRequest,
    InsightStats,
    MinuteGroup,
    WindowAggregates,
    _f,
    _group_order,
    _s,
    summarize,
)

FloatArray = npt.NDArray[np.float64]

LEDGER_COLUMNS: tuple[str, ...] = (
    "ts", "request_id", "model_id", "tier", "is_local", "provider", "latency_s",
    "tokens_in", "tokens_out", "cost_usd", "status", "error_class", "fallbacks",
)

@dataclass(slots=True)
class LedgerColumns:
    """A ledger window as columns, sorted by time (tests and small ledgers; the store path is SQL)."""

    ts: FloatArray
    request_id: npt.NDArray[np.str_]
    model_id: npt.NDArray[np.str_]
    tier: npt.NDArray[np.str_]
    is_local: npt.NDArray[np.bool_]
    provider: npt.NDArray[np.str_]
    latency_s: FloatArray
    tokens_in: FloatArray
    tokens_out: FloatArray
    cost_usd: FloatArray
    status: npt.NDArray[np.str_]
    error_class: npt.NDArray[np.str_]
    fallbacks: FloatArray

    @classmethod
    def from_mapping(cls, cols: Mapping[str, Sequence[Any]]) -> LedgerColumns:
        ts = _f(cols["ts"])
        order = np.argsort(ts, kind="stable")
        built = cls(
            ts=ts,
            request_id=_s(cols["request_id"]),
            model_id=_s(cols["model_id"]),
            tier=_s(cols["tier"]),
            is_local=np.array([bool(v) for v in cols["is_local"]], dtype=np.bool_),
            provider=_s(cols["provider"]),
            latency_s=_f(cols["latency_s"]),
            tokens_in=np.nan_to_num(_f(cols["tokens_in"])),
            tokens_out=np.nan_to_num(_f(cols["tokens_out"])),
            cost_usd=np.nan_to_num(_f(cols["cost_usd"])),
            status=_s(cols["status"]),
            error_class=_s(cols["error_class"]),
            fallbacks=np.nan_to_num(_f(cols["fallbacks"])),
        )
        for name in LEDGER_COLUMNS:
            setattr(built, name, getattr(built, name)[order])
        return built

    @classmethod
    def empty(cls) -> LedgerColumns:
        return cls.from_mapping({c: [] for c in LEDGER_COLUMNS})

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def tokens(self) -> FloatArray:
        return self.tokens_in + self.tokens_out

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        ok: npt.NDArray[np.bool_] = np.equal(self.status, "ok")
        return ok


def costliest_requests(ledger: LedgerColumns, k: int) -> list[CostlyRequest]:
    """The k most expensive requests (ties: most tokens, then earliest); ids and numbers only."""
    if k <= 0 or len(ledger) == 0:
        return []
    order = np.lexsort((-ledger.tokens, -ledger.cost_usd))[:k]
    return [
        CostlyRequest(str(ledger.request_id[i]), float(ledger.ts[i]), str(ledger.model_id[i]),
                      float(ledger.cost_usd[i]), int(ledger.tokens_in[i]), int(ledger.tokens_out[i]))
        for i in order.tolist()
        if ledger.cost_usd[i] > 0
    ]


def aggregate_ledger(
    ledger: LedgerColumns,
    since: float,
    until: float,
    *,
    latency_target_s: float,
    max_costly: int = 10,
    minute_s: float = MINUTE_S,
) -> WindowAggregates:
    """The window's aggregates from in-memory columns: what `sql_stats.scan_window` computes in SQL."""
    inside = (ledger.ts >= since) & (ledger.ts < until)
    idx = np.flatnonzero(inside)
    groups: dict[tuple[int, str, str, str, str], MinuteGroup] = {}
    samples: dict[str, list[float]] = {}
    for i in idx.tolist():
        t = float(ledger.ts[i])
        minute = int((t - since) // minute_s)
        key = (minute, str(ledger.model_id[i]), str(ledger.tier[i]), str(ledger.provider[i]),
               str(ledger.error_class[i]))
        g = groups.get(key)
        if g is None:
            g = groups[key] = MinuteGroup(*key, requests=0, errors=0, local=0, tokens=0, local_tokens=0,
                                          cost_usd=0.0, fallback_rows=0, ok_latency=0, ok_latency_sum_s=0.0,
                                          over_target=0, first_ts=t, last_ts=t)
        tokens = int(ledger.tokens[i])
        local = bool(ledger.is_local[i])
        g.requests += 1
        g.errors += ledger.status[i] != "ok"
        g.local += local
        g.tokens += tokens
        g.local_tokens += tokens if local else 0
        g.cost_usd += float(ledger.cost_usd[i])
        g.fallback_rows += ledger.fallbacks[i] > 0
        lat = float(ledger.latency_s[i])
        if ledger.status[i] == "ok" and math.isfinite(lat):
            g.ok_latency += 1
            g.ok_latency_sum_s += lat
            g.over_target += lat > latency_target_s
            samples.setdefault(g.model_id, []).append(lat)
        g.first_ts, g.last_ts = min(g.first_ts, t), max(g.last_ts, t)
    window = LedgerColumns(*(getattr(ledger, c)[idx] for c in LEDGER_COLUMNS))
    return WindowAggregates(
        since, until, minute_s, latency_target_s, int(idx.size), sorted(groups.values(), key=_group_order),
        {m: np.array(v, dtype=np.float64) for m, v in samples.items()},
        costliest_requests(window, max_costly),
    )


def compute_stats(
    ledger: LedgerColumns,
    control: ControlColumns,
    *,
    since: float,
    until: float,
    phi_target: float,
    latency_target_s: float,
    max_tasks: int = 10,
    basis: str = "requests",
    trajectory_points: int = 24,
    anomaly_bucket_s: float = MINUTE_S,
    control_window_s: float = 300.0,
) -> InsightStats:
    """Every statistic of an in-memory ledger window (the store path: `sql_stats.scan_window` + `summarize`)."""
    agg = aggregate_ledger(ledger, since, until, latency_target_s=latency_target_s, max_costly=max_tasks,
                           minute_s=anomaly_bucket_s)
    return summarize(agg, control, phi_target=phi_target, basis=basis, trajectory_points=trajectory_points,
                     control_window_s=control_window_s)
