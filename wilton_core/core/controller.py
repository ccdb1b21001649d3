"""The phi controller: feedforward quantile threshold plus PI feedback in quantile space. Pure.

Feedforward: if every request went where the threshold sends it, routing the requests whose
difficulty lies above the q-quantile of the recent difficulty distribution to the API class
would give phi = q. So with no disturbance q = phi_target.

Feedback: fallbacks, hard constraints (vision, tools, context) and outages move requests across
classes after the threshold decided, so the measured phi drifts from q. A PI term on that error
shifts q: q = clamp(phi_target + kp·e + ki·I, 0, 1), where e is measured against the target that
was in force while the measurement was taken (so a target change is not mistaken for an error).
When the difficulties of the measured interval are given, the measurement is first corrected by
the feedforward's own miss on them (q_prev minus the local share the published threshold implies
for those difficulties): a stale quantile after a difficulty-mix shift is then fixed by the
refreshed quantile alone instead of winding up the integral.
Mix shifts: that feedforward miss is also a test. Under a stationary mix it is sampling noise
(binomial, standard error sigma); beyond `shift_z`·sigma the mix has moved, and the next quantile
is taken over the difficulties seen since the move only (`difficulties` come newest first, as the
store returns them; `extra["fresh_samples"]` counts how many are new) instead of a window that
still mostly holds the old mix. Without a shift the quantile uses the whole window: its sample
includes the requests that just missed, so a run of easy requests lowers the next threshold and
the cumulative share is paid back on its own.
Anti-windup: I is clamped to ±integral_limit and frozen while q is saturated in the direction
the error pushes; while the measurement is pinned at 0 or 1 (an outage of one class) neither
P nor I acts. The feedback correction moves by at most `max_correction_step` per step; a
target change itself applies at once through the feedforward.

The threshold is the q-quantile of the difficulties; when it falls on a run of equal values,
`tie_api_share` says which share of requests exactly at the threshold go to the API class (the
selector draws it with its `u`). Non-finite inputs are ignored or replaced, never propagated.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from wilton_core.core.control_state import ControlState, PhiWindow

__all__ = ["Controller", "ControllerConfig", "split_threshold"]


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


@dataclass(slots=True, frozen=True)
class ControllerConfig:
    # The plant is phi(k+1) ≈ q(k) - disturbance: a gain near 1 with one interval of delay. For
    # that plant ki alone gives a geometric decay of (1 - ki) per interval; a small kp speeds the
    # first interval without the oscillation a large one causes (see docs/control.md).
    kp: float = 0.1
    ki: float = 0.6
    integral_limit: float = 0.6
    max_correction_step: float = 0.2
    min_requests: int = 20       # fewer measured requests in the interval: no feedback this step
    min_difficulties: int = 20   # fewer samples: use a uniform prior (threshold = q)
    phi_basis: str = "requests"
    default_target: float = 0.75
    # A feedforward miss beyond `shift_z` standard errors of sampling is not noise: the
    # difficulty mix moved. The next quantile then uses only difficulties seen since the move.
    shift_z: float = 4.0

    def __post_init__(self) -> None:
        for name in ("kp", "ki", "integral_limit", "max_correction_step", "shift_z"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0")
        if self.phi_basis not in ("requests", "tokens"):
            raise ValueError("phi_basis must be 'requests' or 'tokens'")


def split_threshold(sorted_difficulties: Sequence[float], q: float) -> tuple[float, float]:
    """(threshold, tie_api_share) that keep a share `q` of these difficulties local.

    Rule applied by the selector: d > threshold → API; d == threshold → API with probability
    tie_api_share; else local. `sorted_difficulties` must be ascending, finite and in [0, 1].
    """
    n = len(sorted_difficulties)
    q = _clamp(q, 0.0, 1.0)
    if n == 0:
        return q, 0.0
    k = q * n  # how many requests should stay local
    if k >= n:
        return 1.0, 0.0
    if k <= 0:
        return 0.0, 1.0
    t = sorted_difficulties[int(k)]
    lo = bisect_left(sorted_difficulties, t)
    hi = bisect_right(sorted_difficulties, t)
    at = hi - lo
    tie = 1.0 - (k - lo) / at
    return float(t), _clamp(tie, 0.0, 1.0)


@dataclass(slots=True, frozen=True)
class _Miss:
    """The feedforward's miss on the measured interval's own difficulties."""

    miss: float        # q_prev - p: share the published threshold aimed at minus what it got
    sigma: float       # standard error of that miss under pure sampling
    n: int


def _clean_sorted(values: Sequence[float]) -> list[float]:
    return sorted(_clamp(v, 0.0, 1.0) for v in (_finite(d) for d in values) if v is not None)


@dataclass(slots=True)
class Controller:
    config: ControllerConfig = field(default_factory=ControllerConfig)

    def measure(self, window: PhiWindow | float | None) -> tuple[float | None, int | None]:
        """(measured phi, sample count or None when a bare number was given)."""
        if window is None:
            return None, None
        if isinstance(window, PhiWindow):
            n = window.tokens if self.config.phi_basis == "tokens" else window.requests
            phi = window.phi(self.config.phi_basis)
            v = _finite(phi) if phi is not None else None
            return (None if v is None else _clamp(v, 0.0, 1.0)), n
        v = _finite(window)
        return (None if v is None else _clamp(v, 0.0, 1.0)), None

    def _feedforward_miss(self, state: ControlState, clean: list[float] | None) -> _Miss | None:
        """How far the published threshold, applied to the interval's own (sorted, clean)
        difficulties, was from the share it aimed at. None when that cannot be known."""
        if clean is None or len(clean) < self.config.min_difficulties:
            return None
        extra = state.extra or {}
        q_prev = _finite(extra.get("q"))
        t = _finite(state.threshold)
        if q_prev is None or t is None:
            return None
        q_prev = _clamp(q_prev, 0.0, 1.0)
        tie = _clamp(_finite(state.tie_api_share) or 0.0, 0.0, 1.0)
        lo, hi = bisect_left(clean, t), bisect_right(clean, t)
        n = len(clean)
        p = (lo + (hi - lo) * (1.0 - tie)) / n
        # Binomial error of p around the true share, plus the error of the quantile itself
        # (estimated from the previous step's sample); floor so q near 0/1 is not "infinitely sure".
        pooled = _finite(extra.get("difficulty_samples")) or 0.0
        var_q = max(q_prev * (1.0 - q_prev), 0.01)
        sigma = math.sqrt(var_q * (1.0 / n + (1.0 / pooled if pooled >= 1 else 0.0)))
        return _Miss(q_prev - p, sigma, n)

    def step(
        self,
        state: ControlState,
        window: PhiWindow | float | None,
        difficulties: Sequence[float],
        now: float,
        interval_difficulties: Sequence[float] | None = None,
    ) -> ControlState:
        """One control interval. `difficulties`: recent ones, NEWEST FIRST (as the store returns
        them), for the quantile; optional `interval_difficulties`: those of the requests in
        `window`, to separate feedforward error from disturbance (see module doc)."""
        cfg = self.config
        extra = dict(state.extra or {})
        target = _finite(state.phi_target)
        target = cfg.default_target if target is None else _clamp(target, 0.0, 1.0)
        applied = _finite(extra.get("applied_target"))
        applied = target if applied is None else _clamp(applied, 0.0, 1.0)
        integral = _clamp(_finite(state.integral) or 0.0, -cfg.integral_limit, cfg.integral_limit)
        prev_corr = _finite(extra.get("correction")) or 0.0

        interval_clean = None if interval_difficulties is None else _clean_sorted(interval_difficulties)
        miss = self._feedforward_miss(state, interval_clean)
        shift = miss is not None and abs(miss.miss) > cfg.shift_z * miss.sigma

        measured, n = self.measure(window)
        enough = measured is not None and (n is None or n >= cfg.min_requests)
        pinned = False
        if enough:
            assert measured is not None
            effective = measured + (0.0 if miss is None else miss.miss)
            e = applied - _clamp(effective, 0.0, 1.0)  # > 0: too little local traffic → raise q
            # A measurement pinned at 0 or 1 against the error means one class served nothing:
            # an outage, which no threshold can fix. Neither P nor I may act on it, or the
            # recovery overshoots by what they accumulated.
            pinned = (measured <= 0.0 and e > 0) or (measured >= 1.0 and e < 0)
        if enough and not pinned:
            tentative = _clamp(integral + e, -cfg.integral_limit, cfg.integral_limit)
            q_raw = target + cfg.kp * e + cfg.ki * tentative
            # Freeze while q is already pinned in the direction the error pushes.
            if not ((q_raw >= 1.0 and e > 0) or (q_raw <= 0.0 and e < 0)):
                integral = tentative
            corr = cfg.kp * e + cfg.ki * integral
        else:
            corr = cfg.ki * integral  # no usable information this interval: hold the integral part
        corr = _clamp(corr, prev_corr - cfg.max_correction_step, prev_corr + cfg.max_correction_step)
        q = _clamp(target + corr, 0.0, 1.0)

        # After a detected mix shift only the difficulties seen since then describe the mix;
        # `fresh` counts them (newest first in `difficulties`) until the window holds no older.
        fresh = _finite(extra.get("fresh_samples"))
        if shift and interval_clean is not None:
            fresh = float(len(interval_clean))
        elif fresh is not None and interval_clean is not None:
            fresh += len(interval_clean)
        pool: Sequence[float] = difficulties
        if fresh is not None and fresh >= 1 and fresh < len(difficulties):
            pool = list(difficulties)[: int(fresh)]
        else:
            fresh = None
        clean = _clean_sorted(pool)
        if len(clean) >= cfg.min_difficulties:
            threshold, tie = split_threshold(clean, q)
        else:
            threshold, tie = q, 0.0  # uniform prior: the q-quantile of U[0,1] is q
        ff_threshold, _ = split_threshold(clean, target) if len(clean) >= cfg.min_difficulties else (target, 0.0)

        now_f = _finite(now)
        extra.update(
            applied_target=target,
            correction=corr,
            fresh_samples=fresh,
            mix_shift=shift,
            q=q,
            feedforward_threshold=ff_threshold,
            difficulty_samples=len(clean),
            window_samples=n,
        )
        return replace(
            state,
            phi_target=target,
            threshold=_clamp(threshold, 0.0, 1.0),
            bias=corr,
            measured_phi=measured,
            error=None if measured is None else target - measured,
            integral=integral,
            updated_at=state.updated_at if now_f is None else now_f,
            steps=state.steps + 1,
            tie_api_share=tie,
            extra=extra,
        )
