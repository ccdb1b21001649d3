"""Numbers first: the statistics an insight report is built on.

Every function here is pure over column arrays (numpy) and takes the window bounds as
arguments, so each has a known answer on a synthetic ledger. `compute_stats` assembles them
into one typed `InsightStats`; nothing in this module reads a clock, a store or a network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONTROL_COLUMNS",
    "LEDGER_COLUMNS",
    "OFF_TARGET_TOLERANCE",
    "Anomaly",
    "ControlColumns",
    "ControllerActivity",
    "CostlyRequest",
    "InsightStats",
    "LedgerColumns",
    "ModelLatency",
    "PhiPoint",
    "PhiSummary",
    "ProviderHealth",
    "RateLimitEpisode",
    "TierShare",
    "Totals",
    "bucket_series",
    "compute_stats",
    "controller_activity",
    "costliest_requests",
    "latency_by_model",
    "phi_trajectory",
    "provider_health",
    "rate_limit_episodes",
    "rolling_phi",
    "rolling_zscore_anomalies",
    "tier_shares",
    "time_off_target",
]

FloatArray = npt.NDArray[np.float64]
OFF_TARGET_TOLERANCE = 0.02

LEDGER_COLUMNS: tuple[str, ...] = (
    "ts", "request_id", "model_id", "tier", "is_local", "provider", "latency_s",
    "tokens_in", "tokens_out", "cost_usd", "status", "error_class", "fallbacks",
)
CONTROL_COLUMNS: tuple[str, ...] = ("ts", "phi_target", "measured_phi", "threshold", "error")


def _f(values: Sequence[Any] | npt.NDArray[Any]) -> FloatArray:
    """Floats with None -> NaN (nullable store columns arrive as None)."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _s(values: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.str_]:
    return np.array(["" if v is None else str(v) for v in values], dtype=np.str_)


@dataclass(slots=True)
class LedgerColumns:
    """The ledger window as columns, sorted by time."""

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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for row, obj in zip(d["latency"], self.latency, strict=True):
            row["meets_target"] = obj.meets_target
        for row, ep in zip(d["rate_limit_episodes"], self.rate_limit_episodes, strict=True):
            row["duration_s"] = ep.duration_s
        return d


# ---------------------------------------------------------------- pure functions


def _opt(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def bucket_series(
    ts: FloatArray,
    values: FloatArray,
    since: float,
    until: float,
    bucket_s: float,
    weights: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """(bucket starts, weighted mean of `values` per bucket (NaN when empty), count per bucket)."""
    n = max(1, int(np.ceil((until - since) / bucket_s)))
    starts = since + bucket_s * np.arange(n, dtype=np.float64)
    inside = (ts >= since) & (ts < until)
    idx = np.minimum(((ts[inside] - since) // bucket_s).astype(np.int64), n - 1)
    w = np.ones(idx.shape[0]) if weights is None else weights[inside]
    counts = np.bincount(idx, minlength=n).astype(np.int64)
    wsum = np.bincount(idx, weights=w, minlength=n)
    vsum = np.bincount(idx, weights=w * values[inside], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(wsum > 0, vsum / np.where(wsum > 0, wsum, 1.0), np.nan)
    return starts, means, counts


def phi_trajectory(
    ledger: LedgerColumns, since: float, until: float, bucket_s: float, basis: str = "requests"
) -> list[PhiPoint]:
    """Local share per bucket: by request count, or weighted by tokens when basis='tokens'."""
    weights = ledger.tokens if basis == "tokens" else None
    starts, phi, counts = bucket_series(
        ledger.ts, ledger.is_local.astype(np.float64), since, until, bucket_s, weights
    )
    return [PhiPoint(float(s), _opt(p), int(c)) for s, p, c in zip(starts, phi, counts, strict=True)]


def rolling_phi(
    ledger: LedgerColumns, since: float, until: float, step_s: float, window_s: float, basis: str = "requests"
) -> tuple[FloatArray, FloatArray]:
    """(step starts, phi over the trailing `window_s` ending at each step's end); NaN when empty.

    This is what the controller measures, so sparse traffic does not read as 0/1 swings.
    """
    w = ledger.tokens if basis == "tokens" else np.ones(len(ledger))
    n = max(1, int(np.ceil((until - since) / step_s)))
    starts = since + step_s * np.arange(n, dtype=np.float64)
    inside = (ledger.ts >= since) & (ledger.ts < until)
    idx = np.minimum(((ledger.ts[inside] - since) // step_s).astype(np.int64), n - 1)
    total = np.bincount(idx, weights=w[inside], minlength=n)
    local = np.bincount(idx, weights=(w * ledger.is_local)[inside], minlength=n)
    k = max(1, round(window_s / step_s))
    ctot = np.concatenate([[0.0], np.cumsum(total)])
    cloc = np.concatenate([[0.0], np.cumsum(local)])
    lo = np.maximum(np.arange(1, n + 1) - k, 0)
    tot_w = ctot[1:] - ctot[lo]
    loc_w = cloc[1:] - cloc[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(tot_w > 0, loc_w / np.where(tot_w > 0, tot_w, 1.0), np.nan)
    return starts, phi


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


def tier_shares(ledger: LedgerColumns) -> list[TierShare]:
    total_req = len(ledger)
    total_tok = float(ledger.tokens.sum())
    total_cost = float(ledger.cost_usd.sum())
    out = []
    for tier in sorted(set(ledger.tier.tolist())):
        m = ledger.tier == tier
        req, tok, cost = int(m.sum()), float(ledger.tokens[m].sum()), float(ledger.cost_usd[m].sum())
        out.append(TierShare(tier, req, _share(req, total_req), int(tok), _share(tok, total_tok),
                             cost, _share(cost, total_cost)))
    return out


def latency_by_model(ledger: LedgerColumns, target_s: float) -> list[ModelLatency]:
    """p50/p95 of successful requests per model (failures have no meaningful latency)."""
    out = []
    good = ledger.ok & np.isfinite(ledger.latency_s)
    for model in sorted(set(ledger.model_id[good].tolist())):
        lat = ledger.latency_s[good & (ledger.model_id == model)]
        p50, p95 = np.percentile(lat, [50, 95])
        out.append(ModelLatency(model, int(lat.size), float(p50), float(p95), target_s,
                                float((lat > target_s).mean())))
    return out


def provider_health(ledger: LedgerColumns) -> list[ProviderHealth]:
    """Error rate = non-ok rows; fallback rate = rows answered only after other models failed."""
    out = []
    for prov in sorted(set(ledger.provider.tolist())):
        m = ledger.provider == prov
        n = int(m.sum())
        errs = m & ~ledger.ok
        fb = m & (ledger.fallbacks > 0)
        classes: dict[str, int] = {}
        for c in ledger.error_class[errs].tolist():
            key = c or "unknown"
            classes[key] = classes.get(key, 0) + 1
        out.append(ProviderHealth(prov, n, int(errs.sum()), _share(int(errs.sum()), n),
                                  int(fb.sum()), _share(int(fb.sum()), n), classes))
    return out


def rate_limit_episodes(ledger: LedgerColumns, max_gap_s: float = 300.0) -> list[RateLimitEpisode]:
    """Runs of rate_limited rows per provider, in time order.

    A run ends at the provider's next row that is not rate limited, or when two rate-limited
    rows are more than `max_gap_s` apart.
    """
    episodes: list[RateLimitEpisode] = []
    for prov in sorted(set(ledger.provider.tolist())):
        m = ledger.provider == prov
        ts, limited = ledger.ts[m], ledger.error_class[m] == "rate_limited"
        current: RateLimitEpisode | None = None
        for t, lim in zip(ts.tolist(), limited.tolist(), strict=True):
            if lim and current is not None and t - current.end <= max_gap_s:
                current.end, current.count = t, current.count + 1
                continue
            if current is not None:
                episodes.append(current)
                current = None
            if lim:
                current = RateLimitEpisode(prov, t, t, 1)
        if current is not None:
            episodes.append(current)
    return sorted(episodes, key=lambda e: (e.start, e.provider))


def costliest_requests(ledger: LedgerColumns, k: int) -> list[CostlyRequest]:
    """The k most expensive requests (ties: most tokens first); ids and numbers only."""
    if k <= 0 or len(ledger) == 0:
        return []
    order = np.lexsort((-ledger.tokens, -ledger.cost_usd))[:k]
    return [
        CostlyRequest(str(ledger.request_id[i]), float(ledger.ts[i]), str(ledger.model_id[i]),
                      float(ledger.cost_usd[i]), int(ledger.tokens_in[i]), int(ledger.tokens_out[i]))
        for i in order.tolist()
        if ledger.cost_usd[i] > 0
    ]


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
    anomaly_bucket_s: float = 60.0,
    control_window_s: float = 300.0,
) -> InsightStats:
    n = len(ledger)
    local = int(ledger.is_local.sum())
    errors = int((~ledger.ok).sum())
    tokens = ledger.tokens
    if basis == "tokens":
        measured = _share(float(tokens[ledger.is_local].sum()), float(tokens.sum())) if tokens.sum() else None
    else:
        measured = _share(local, n) if n else None
    traj_bucket = max(60.0, (until - since) / max(1, trajectory_points))
    notes: list[str] = []

    # The controller's own measurements are the better off-target clock (they are what it acted
    # on); without them, phi over the same trailing window the controller uses, minute by minute.
    ctl_known = control.measured_phi[np.isfinite(control.measured_phi)] if len(control) else np.array([])
    if ctl_known.size:
        off_s, obs_s = time_off_target(control.ts, control.measured_phi, control.phi_target, until)
        source = "control_history"
    else:
        starts, rphi = rolling_phi(ledger, since, until, 60.0, control_window_s, basis)
        off_s, obs_s = time_off_target(starts, rphi, phi_target, until)
        source = "ledger"
        notes.append(f"no control_history in the window: off-target time measured from the ledger's phi over "
                     f"a trailing {control_window_s:g} s window, minute by minute")

    phi = PhiSummary(
        target=phi_target, basis=basis, measured=measured,
        trajectory=phi_trajectory(ledger, since, until, traj_bucket, basis),
        source=source, off_target_s=off_s, off_target_share=_share(off_s, obs_s) if obs_s else None,
        observed_s=obs_s,
    )

    anomalies: list[Anomaly] = []
    starts, mphi, _ = bucket_series(ledger.ts, ledger.is_local.astype(np.float64), since, until, anomaly_bucket_s)
    anomalies += rolling_zscore_anomalies("phi", starts, mphi, min_std=0.05)
    ok_lat = ledger.ok & np.isfinite(ledger.latency_s)
    starts, mlat, _ = bucket_series(ledger.ts[ok_lat], ledger.latency_s[ok_lat], since, until, anomaly_bucket_s)
    anomalies += rolling_zscore_anomalies("latency_s", starts, mlat, min_std=0.05 * latency_target_s)
    starts, merr, _ = bucket_series(ledger.ts, (~ledger.ok).astype(np.float64), since, until, anomaly_bucket_s)
    anomalies += rolling_zscore_anomalies("error_rate", starts, merr, min_std=0.05)
    anomalies.sort(key=lambda a: (a.ts, a.metric))

    return InsightStats(
        since=since,
        until=until,
        totals=Totals(n, local, int(tokens.sum()), float(ledger.cost_usd.sum()), errors,
                      _share(errors, n) if n else None),
        phi=phi,
        controller=controller_activity(control),
        tiers=tier_shares(ledger),
        latency_target_s=latency_target_s,
        latency=latency_by_model(ledger, latency_target_s),
        providers=provider_health(ledger),
        rate_limit_episodes=rate_limit_episodes(ledger),
        costliest=costliest_requests(ledger, max_tasks),
        anomalies=anomalies,
        notes=notes,
    )
