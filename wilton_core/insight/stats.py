"""Numbers first: the statistics an insight report is built on.

The window is first reduced to `WindowAggregates`: per-minute groups (minute, model, tier,
provider, error class) with exact counts and sums, a latency sample per model, and the costliest
requests. Its size follows minutes x distinct keys, never the number of requests. One producer
builds it: `wilton_core.insight.sql_stats.scan_window` (SQL over the store, bounded memory; the
tests check it against an in-memory oracle, tests/insight/ledger_oracle.py). Every statistic is
then a pure function of the aggregates, so each has a known answer on a synthetic ledger. Nothing here reads a clock, a store or a
network.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONTROL_COLUMNS",
    "MINUTE_S",
    "OFF_TARGET_TOLERANCE",
    "Anomaly",
    "ControlColumns",
    "ControllerActivity",
    "CostlyRequest",
    "InsightStats",
    "MinuteGroup",
    "ModelLatency",
    "PhiPoint",
    "PhiSummary",
    "ProviderHealth",
    "RateLimitEpisode",
    "TierShare",
    "Totals",
    "WindowAggregates",
    "controller_activity",
    "latency_by_model",
    "minute_series",
    "phi_trajectory",
    "provider_health",
    "rate_limit_episodes",
    "rolling_phi",
    "rolling_zscore_anomalies",
    "summarize",
    "tier_shares",
    "time_off_target",
    "trajectory_bucket_s",
]

FloatArray = npt.NDArray[np.float64]
OFF_TARGET_TOLERANCE = 0.02
MINUTE_S = 60.0
RATE_LIMITED = "rate_limited"

CONTROL_COLUMNS: tuple[str, ...] = ("ts", "phi_target", "measured_phi", "threshold", "error")


def _f(values: Sequence[Any] | npt.NDArray[Any]) -> FloatArray:
    """Floats with None -> NaN (nullable store columns arrive as None)."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _s(values: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.str_]:
    return np.array(["" if v is None else str(v) for v in values], dtype=np.str_)


@dataclass(slots=True)
class ControlColumns:
    """control_history rows as columns, sorted by time; measured_phi/error may be NaN."""

    ts: FloatArray
    phi_target: FloatArray
    measured_phi: FloatArray
    threshold: FloatArray
    error: FloatArray

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> ControlColumns:
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in CONTROL_COLUMNS]
        arrays = [_f(c) for c in cols]
        order = np.argsort(arrays[0], kind="stable")
        return cls(*(a[order] for a in arrays))

    def __len__(self) -> int:
        return int(self.ts.shape[0])


# ---------------------------------------------------------------- window aggregates


@dataclass(slots=True)
class MinuteGroup:
    """Exact totals of the window's rows for one (minute, model, tier, provider, error class).

    `minute` counts `minute_s` buckets from the window start. `ok_latency_sum_s` and
    `over_target` cover successful rows with a finite latency (`ok_latency` of them);
    `first_ts`/`last_ts` bound the group's rows (rate-limit episodes are built from them).
    """

    minute: int
    model_id: str
    tier: str
    provider: str
    error_class: str                  # "" when the row has none
    requests: int
    errors: int                       # status != ok
    local: int
    tokens: int
    local_tokens: int
    cost_usd: float
    fallback_rows: int                # rows with fallbacks > 0
    ok_latency: int
    ok_latency_sum_s: float
    over_target: int
    first_ts: float
    last_ts: float


@dataclass(slots=True)
class WindowAggregates:
    """Everything the statistics need from one window, bounded by minutes x keys.

    `latency_samples[model]` holds successful latencies: every one of the window when
    `latency_sampled` is False, else a bounded sample (see sql_stats) — p50/p95 then come from it,
    while counts and the over-target share stay exact (from the groups).
    """

    since: float
    until: float
    minute_s: float
    latency_target_s: float
    rows: int
    groups: list[MinuteGroup]
    latency_samples: dict[str, FloatArray]
    costliest: list[CostlyRequest]
    latency_sampled: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def minutes(self) -> int:
        return max(1, math.ceil((self.until - self.since) / self.minute_s))

    @classmethod
    def empty(cls, since: float, until: float, latency_target_s: float, minute_s: float = MINUTE_S
              ) -> WindowAggregates:
        return cls(since, until, minute_s, latency_target_s, 0, [], {}, [])


# ---------------------------------------------------------------- result types


@dataclass(slots=True)
class PhiPoint:
    start: float
    phi: float | None
    requests: int


@dataclass(slots=True)
class PhiSummary:
    target: float
    basis: str
    measured: float | None            # over the whole window, from the ledger
    trajectory: list[PhiPoint]
    source: str                       # where off-target time came from: control_history | ledger
    off_target_s: float
    off_target_share: float | None    # of the observed time
    observed_s: float


@dataclass(slots=True)
class ControllerActivity:
    steps: int
    threshold_min: float | None
    threshold_max: float | None
    threshold_last: float | None
    mean_abs_error: float | None


@dataclass(slots=True)
class TierShare:
    tier: str
    requests: int
    requests_share: float
    tokens: int
    tokens_share: float
    cost_usd: float
    cost_share: float


@dataclass(slots=True)
class ModelLatency:
    model_id: str
    requests: int
    p50_s: float
    p95_s: float
    target_s: float
    over_target_share: float

    @property
    def meets_target(self) -> bool:
        return self.p95_s <= self.target_s


@dataclass(slots=True)
class ProviderHealth:
    provider: str
    requests: int
    errors: int
    error_rate: float
    fallback_requests: int
    fallback_rate: float
    error_classes: dict[str, int]


@dataclass(slots=True)
class RateLimitEpisode:
    provider: str
    start: float
    end: float
    count: int

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(slots=True)
class CostlyRequest:
    request_id: str
    ts: float
    model_id: str
    cost_usd: float
    tokens_in: int
    tokens_out: int


@dataclass(slots=True)
class Anomaly:
    metric: str
    ts: float          # start of the bucket that shifted
    value: float
    baseline: float    # mean of the preceding window
    zscore: float


@dataclass(slots=True)
class Totals:
    requests: int
    local_requests: int
    tokens: int
    cost_usd: float
    errors: int
    error_rate: float | None


@dataclass(frozen=True, slots=True)
class KeySpend:
    """One client key over the window (docs/access.md): its requests, refusals, local-only
    requests, tokens and spend, with its budget for comparison."""

    name: str
    requests: int
    refused: int
    local_only: int
    tokens: int
    cost_usd: float
    budget_usd: float | None = None
    budget_period: str = "total"


@dataclass(slots=True)
class InsightStats:
    since: float
    until: float
    totals: Totals
    phi: PhiSummary
    controller: ControllerActivity
    tiers: list[TierShare]
    latency_target_s: float
    latency: list[ModelLatency]
    providers: list[ProviderHealth]
    rate_limit_episodes: list[RateLimitEpisode]
    costliest: list[CostlyRequest]
    anomalies: list[Anomaly]
    notes: list[str] = field(default_factory=list)
    keys: list[KeySpend] = field(default_factory=list)  # filled from the store (access.insight)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for row, obj in zip(d["latency"], self.latency, strict=True):
            row["meets_target"] = obj.meets_target
        for row, ep in zip(d["rate_limit_episodes"], self.rate_limit_episodes, strict=True):
            row["duration_s"] = ep.duration_s
        return d


# ---------------------------------------------------------------- building the aggregates


def _opt(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _group_order(g: MinuteGroup) -> tuple[int, str, str, str, str]:
    return (g.minute, g.model_id, g.tier, g.provider, g.error_class)


# ---------------------------------------------------------------- statistics over the aggregates


def minute_series(agg: WindowAggregates) -> dict[str, FloatArray]:
    """Per-minute sums over all groups: requests, local, tokens, local_tokens, errors,
    ok_latency, ok_latency_sum_s (arrays of length `agg.minutes`, zeros where nothing ran)."""
    n = agg.minutes
    names = ("requests", "local", "tokens", "local_tokens", "errors", "ok_latency", "ok_latency_sum_s")
    minutes = np.array([min(g.minute, n - 1) for g in agg.groups], dtype=np.int64)
    out: dict[str, FloatArray] = {}
    for name in names:
        weights = np.array([float(getattr(g, name)) for g in agg.groups], dtype=np.float64)
        out[name] = np.bincount(minutes, weights=weights, minlength=n).astype(np.float64)
    return out


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def trajectory_bucket_s(since: float, until: float, points: int, minute_s: float = MINUTE_S) -> float:
    """About `points` buckets over the window, each a whole number of minutes (at least one)."""
    return minute_s * max(1, math.ceil((until - since) / max(1, points) / minute_s))


def _regroup(series: FloatArray, k: int) -> FloatArray:
    """Sum consecutive runs of k entries (the last run may be shorter)."""
    n = math.ceil(series.shape[0] / k)
    padded = np.zeros(n * k)
    padded[: series.shape[0]] = series
    out: FloatArray = padded.reshape(n, k).sum(axis=1)
    return out


def phi_trajectory(agg: WindowAggregates, bucket_s: float, basis: str = "requests") -> list[PhiPoint]:
    """Local share per bucket (a whole number of minutes): by request count, or weighted by
    tokens when basis='tokens'."""
    k = max(1, round(bucket_s / agg.minute_s))
    s = minute_series(agg)
    num, den = (s["local_tokens"], s["tokens"]) if basis == "tokens" else (s["local"], s["requests"])
    num, den, counts = _regroup(num, k), _regroup(den, k), _regroup(s["requests"], k)
    starts = agg.since + k * agg.minute_s * np.arange(counts.shape[0], dtype=np.float64)
    phi = _ratio(num, den)
    return [PhiPoint(float(t), _opt(p), int(c)) for t, p, c in zip(starts, phi, counts, strict=True)]


def rolling_phi(agg: WindowAggregates, window_s: float, basis: str = "requests") -> tuple[FloatArray, FloatArray]:
    """(minute starts, phi over the trailing `window_s` ending at each minute's end); NaN when empty.

    This is what the controller measures, so sparse traffic does not read as 0/1 swings.
    """
    s = minute_series(agg)
    num, den = (s["local_tokens"], s["tokens"]) if basis == "tokens" else (s["local"], s["requests"])
    n = agg.minutes
    k = max(1, round(window_s / agg.minute_s))
    cnum = np.concatenate([[0.0], np.cumsum(num)])
    cden = np.concatenate([[0.0], np.cumsum(den)])
    lo = np.maximum(np.arange(1, n + 1) - k, 0)
    starts = agg.since + agg.minute_s * np.arange(n, dtype=np.float64)
    return starts, _ratio(cnum[1:] - cnum[lo], cden[1:] - cden[lo])


def time_off_target(
    ts: FloatArray,
    phi: FloatArray,
    target: FloatArray | float,
    until: float,
    tolerance: float = OFF_TARGET_TOLERANCE,
) -> tuple[float, float]:
    """(seconds off target, seconds observed) for a step function of phi samples.

    Each sample holds until the next one (the last until `until`); a sample whose phi is NaN
    (nothing routed) counts as neither on nor off target.
    """
    if ts.shape[0] == 0:
        return 0.0, 0.0
    ends = np.append(ts[1:], max(until, float(ts[-1])))
    durations = np.clip(ends - ts, 0.0, None)
    known = np.isfinite(phi)
    off = known & (np.abs(phi - np.broadcast_to(target, phi.shape)) > tolerance)
    return float(durations[off].sum()), float(durations[known].sum())


def controller_activity(control: ControlColumns) -> ControllerActivity:
    if len(control) == 0:
        return ControllerActivity(0, None, None, None, None)
    thr = control.threshold[np.isfinite(control.threshold)]
    err = np.abs(control.error[np.isfinite(control.error)])
    return ControllerActivity(
        steps=len(control),
        threshold_min=_opt(thr.min()) if thr.size else None,
        threshold_max=_opt(thr.max()) if thr.size else None,
        threshold_last=_opt(thr[-1]) if thr.size else None,
        mean_abs_error=_opt(err.mean()) if err.size else None,
    )


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _totals_by(groups: Iterable[MinuteGroup], key: str, fields: Sequence[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for g in groups:
        acc = out.setdefault(getattr(g, key), [0.0] * len(fields))
        for j, f in enumerate(fields):
            acc[j] += getattr(g, f)
    return out


def tier_shares(agg: WindowAggregates) -> list[TierShare]:
    by_tier = _totals_by(agg.groups, "tier", ("requests", "tokens", "cost_usd"))
    total_req = sum(v[0] for v in by_tier.values())
    total_tok = sum(v[1] for v in by_tier.values())
    total_cost = sum(v[2] for v in by_tier.values())
    return [
        TierShare(tier, int(req), _share(req, total_req), int(tok), _share(tok, total_tok), cost,
                  _share(cost, total_cost))
        for tier, (req, tok, cost) in sorted(by_tier.items())
    ]


def latency_by_model(agg: WindowAggregates) -> list[ModelLatency]:
    """p50/p95 of successful requests per model (failures have no meaningful latency).

    Counts and the share over target are exact; the percentiles come from `latency_samples`.
    """
    out = []
    target = agg.latency_target_s
    for model, (n, over) in sorted(_totals_by(agg.groups, "model_id", ("ok_latency", "over_target")).items()):
        lat = agg.latency_samples.get(model)
        if n <= 0 or lat is None or lat.size == 0:
            continue
        p50, p95 = np.percentile(lat, [50, 95])
        out.append(ModelLatency(model, int(n), float(p50), float(p95), target, _share(over, n)))
    return out


def provider_health(agg: WindowAggregates) -> list[ProviderHealth]:
    """Error rate = non-ok rows; fallback rate = rows answered only after other models failed."""
    by_prov = _totals_by(agg.groups, "provider", ("requests", "errors", "fallback_rows"))
    classes: dict[str, dict[str, int]] = {}
    for g in agg.groups:
        if g.errors:
            per = classes.setdefault(g.provider, {})
            key = g.error_class or "unknown"
            per[key] = per.get(key, 0) + g.errors
    out = []
    for prov, (n, errs, fb) in sorted(by_prov.items()):
        out.append(ProviderHealth(prov, int(n), int(errs), _share(errs, n), int(fb), _share(fb, n),
                                  dict(sorted(classes.get(prov, {}).items()))))
    return out


def rate_limit_episodes(agg: WindowAggregates, max_gap_s: float = 300.0) -> list[RateLimitEpisode]:
    """Runs of rate_limited rows per provider, at one-minute resolution.

    A run ends when the provider answers a row that is not rate limited between two rate-limited
    ones, or when two rate-limited rows are more than `max_gap_s` apart. Each minute is seen
    through its first and last row of each kind, so every split across minutes is exact; inside a
    single minute, successes interleaved with rate limits do not split the run.
    """
    # per (provider, minute): [rl_count, rl_first, rl_last, other_first, other_last]
    cells: dict[str, dict[int, list[float]]] = {}
    for g in agg.groups:
        c = cells.setdefault(g.provider, {}).setdefault(g.minute, [0, math.inf, -math.inf, math.inf, -math.inf])
        if g.error_class == RATE_LIMITED:
            c[0] += g.requests
            c[1], c[2] = min(c[1], g.first_ts), max(c[2], g.last_ts)
        else:
            c[3], c[4] = min(c[3], g.first_ts), max(c[4], g.last_ts)
    episodes: list[RateLimitEpisode] = []
    for prov, by_minute in cells.items():
        current: RateLimitEpisode | None = None
        other_since_end = False   # a non-rate-limited row came after current.end
        for minute in sorted(by_minute):
            rl, rl_first, rl_last, o_first, o_last = by_minute[minute]
            if rl:
                broken = current is None or other_since_end or o_first < rl_first or rl_first - current.end > max_gap_s
                if broken:
                    if current is not None:
                        episodes.append(current)
                    current = RateLimitEpisode(prov, rl_first, rl_last, int(rl))
                else:
                    assert current is not None
                    current.end, current.count = rl_last, current.count + int(rl)
                other_since_end = o_last > rl_last
            elif o_last > -math.inf:
                other_since_end = True
        if current is not None:
            episodes.append(current)
    return sorted(episodes, key=lambda e: (e.start, e.provider))


def rolling_zscore_anomalies(
    metric: str,
    starts: FloatArray,
    values: FloatArray,
    window: int = 30,
    min_periods: int = 10,
    threshold: float = 4.0,
    min_std: float = 0.0,
) -> list[Anomaly]:
    """Buckets whose value sits more than `threshold` standard deviations from the mean of the
    `window` preceding non-empty buckets (the point itself excluded, so a shift cannot hide in
    its own baseline). `min_std` floors the deviation so a flat series does not make every
    wobble infinitely surprising. Empty buckets (NaN) are skipped.
    """
    known = np.flatnonzero(np.isfinite(values))
    out: list[Anomaly] = []
    for j in range(min_periods, known.size):
        prev = values[known[max(0, j - window):j]]
        mean, std = float(prev.mean()), max(float(prev.std()), min_std)
        x = float(values[known[j]])
        if std <= 0.0:
            if x == mean:
                continue
            z = float("inf")
        else:
            z = (x - mean) / std
        if abs(z) > threshold:
            out.append(Anomaly(metric, float(starts[known[j]]), x, mean, z if np.isfinite(z) else 1e9))
    return out


def summarize(
    agg: WindowAggregates,
    control: ControlColumns,
    *,
    phi_target: float,
    basis: str = "requests",
    trajectory_points: int = 24,
    control_window_s: float = 300.0,
) -> InsightStats:
    since, until = agg.since, agg.until
    s = minute_series(agg)
    n, local, errors = int(s["requests"].sum()), int(s["local"].sum()), int(s["errors"].sum())
    tokens = int(s["tokens"].sum())
    if basis == "tokens":
        measured = _share(float(s["local_tokens"].sum()), tokens) if tokens else None
    else:
        measured = _share(local, n) if n else None
    notes = list(agg.notes)

    # The controller's own measurements are the better off-target clock (they are what it acted
    # on); without them, phi over the same trailing window the controller uses, minute by minute.
    ctl_known = control.measured_phi[np.isfinite(control.measured_phi)] if len(control) else np.array([])
    if ctl_known.size:
        off_s, obs_s = time_off_target(control.ts, control.measured_phi, control.phi_target, until)
        source = "control_history"
    else:
        starts, rphi = rolling_phi(agg, control_window_s, basis)
        off_s, obs_s = time_off_target(starts, rphi, phi_target, until)
        source = "ledger"
        notes.append(f"no control_history in the window: off-target time measured from the ledger's phi over "
                     f"a trailing {control_window_s:g} s window, minute by minute")

    phi = PhiSummary(
        target=phi_target, basis=basis, measured=measured,
        trajectory=phi_trajectory(agg, trajectory_bucket_s(since, until, trajectory_points, agg.minute_s), basis),
        source=source, off_target_s=off_s, off_target_share=_share(off_s, obs_s) if obs_s else None,
        observed_s=obs_s,
    )

    starts = since + agg.minute_s * np.arange(agg.minutes, dtype=np.float64)
    anomalies = rolling_zscore_anomalies("phi", starts, _ratio(s["local"], s["requests"]), min_std=0.05)
    anomalies += rolling_zscore_anomalies("latency_s", starts, _ratio(s["ok_latency_sum_s"], s["ok_latency"]),
                                          min_std=0.05 * agg.latency_target_s)
    anomalies += rolling_zscore_anomalies("error_rate", starts, _ratio(s["errors"], s["requests"]), min_std=0.05)
    anomalies.sort(key=lambda a: (a.ts, a.metric))

    return InsightStats(
        since=since,
        until=until,
        totals=Totals(n, local, tokens, float(sum(g.cost_usd for g in agg.groups)), errors,
                      _share(errors, n) if n else None),
        phi=phi,
        controller=controller_activity(control),
        tiers=tier_shares(agg),
        latency_target_s=agg.latency_target_s,
        latency=latency_by_model(agg),
        providers=provider_health(agg),
        rate_limit_episodes=rate_limit_episodes(agg),
        costliest=agg.costliest,
        anomalies=anomalies,
        notes=notes,
    )
