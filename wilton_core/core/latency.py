"""Latency statistics per stage and per model over a sliding window (seed 000's LatencyTracker).

Each series keeps the last `window` observations twice: in a ring buffer (to know which value
leaves the window) and in a sorted list (so p50/p95/max are index lookups). Recording is a
ring-buffer write plus one bisect insert/remove — a C memmove over at most `window` floats —
so the router can record on every request and the selector can read p50/p95 for every
candidate without sorting anything. No I/O; one lock per tracker makes it safe to share
between the request path and a metrics thread.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from wilton_core.config import LatencyTargets

__all__ = ["Breach", "LatencyTracker", "ModelLatency", "Series", "percentile"]

Stat = Literal["avg", "p50", "p95", "max"]


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of an already sorted list; q in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of an empty series")
    pos = (len(sorted_values) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


class Series:
    """The last `window` observations of one quantity. Not locked: the tracker locks."""

    __slots__ = ("_next", "_ring", "_sorted", "_sum", "_writes", "total", "window")

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._ring: list[float] = []
        self._sorted: list[float] = []
        self._next = 0
        self._sum = 0.0
        self._writes = 0
        self.total = 0  # observations ever recorded, not only those in the window

    def add(self, value: float) -> None:
        if len(self._ring) < self.window:
            self._ring.append(value)
        else:
            old = self._ring[self._next]
            self._ring[self._next] = value
            self._next = (self._next + 1) % self.window
            del self._sorted[bisect_left(self._sorted, old)]
            self._sum -= old
        insort(self._sorted, value)
        self._sum += value
        self.total += 1
        self._writes += 1
        if self._writes >= self.window:
            # Adding and subtracting floats drifts; re-summing once per window keeps avg exact
            # at an amortised O(1) cost.
            self._sum = math.fsum(self._ring)
            self._writes = 0

    def __len__(self) -> int:
        return len(self._ring)

    def avg(self) -> float:
        return self._sum / len(self._ring)

    def max(self) -> float:
        return self._sorted[-1]

    def min(self) -> float:
        return self._sorted[0]

    def quantile(self, q: float) -> float:
        return percentile(self._sorted, q)

    def values(self) -> list[float]:
        """Window contents, oldest first."""
        if len(self._ring) < self.window:
            return list(self._ring)
        return self._ring[self._next:] + self._ring[: self._next]


@dataclass(frozen=True, slots=True)
class ModelLatency:
    """What the selector reads per model. ttft_p50_s is None until a stream was recorded."""

    count: int
    latency_avg_s: float
    latency_p50_s: float
    latency_p95_s: float
    latency_max_s: float
    ttft_p50_s: float | None
    ttft_p95_s: float | None


@dataclass(frozen=True, slots=True)
class Breach:
    stage: str
    stat: str
    value: float
    target: float

    @property
    def ratio(self) -> float:
        return self.value / self.target


class LatencyTracker:
    """Per-stage (stt, llm, tts_generate, tts_playback, or any name) and per-model latencies."""

    def __init__(
        self,
        targets: LatencyTargets | Mapping[str, float] | None = None,
        window: int = 1000,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        if targets is None:
            targets = LatencyTargets()
        self.targets: dict[str, float] = (
            targets.as_dict() if isinstance(targets, LatencyTargets) else dict(targets)
        )
        self.window = window
        self._lock = threading.Lock()
        self._stages: dict[str, Series] = {}
        self._models: dict[str, Series] = {}
        self._ttft: dict[str, Series] = {}

    @staticmethod
    def _valid(seconds: float) -> bool:
        # A negative or NaN duration is a clock bug upstream; one would poison every percentile.
        return math.isfinite(seconds) and seconds >= 0

    def _series(self, table: dict[str, Series], key: str) -> Series:
        s = table.get(key)
        if s is None:
            s = table[key] = Series(self.window)
        return s

    def record(self, stage: str, seconds: float, *, model: str | None = None) -> bool:
        """Record one duration for `stage` (and for `model` when given, if the stage is llm).

        Returns False (and records nothing) for a negative, NaN or infinite duration.
        """
        if not self._valid(seconds):
            return False
        with self._lock:
            self._series(self._stages, stage).add(seconds)
            if model is not None and stage == "llm":
                self._series(self._models, model).add(seconds)
        return True

    def record_model(self, model: str, latency_s: float, ttft_s: float | None = None) -> bool:
        """One LLM call: counts for the `llm` stage and for `model`; ttft only for streams."""
        if not self._valid(latency_s):
            return False
        with self._lock:
            self._series(self._stages, "llm").add(latency_s)
            self._series(self._models, model).add(latency_s)
            if ttft_s is not None and self._valid(ttft_s):
                self._series(self._ttft, model).add(ttft_s)
        return True

    def get_stats(self) -> dict[str, dict[str, float | int | None]]:
        """`{'llm': {'avg': 1.2, 'max': 3.4, 'p50': .., 'p95': .., 'target': 2.0, 'count': n}}`.

        Stages with a target but no observation yet are listed with count 0 and None stats.
        """
        out: dict[str, dict[str, float | int | None]] = {}
        with self._lock:
            for stage, target in self.targets.items():
                if stage not in self._stages:
                    out[stage] = {"avg": None, "max": None, "p50": None, "p95": None,
                                  "target": target, "count": 0}
            for stage, s in self._stages.items():
                out[stage] = {
                    "avg": s.avg(),
                    "max": s.max(),
                    "p50": s.quantile(50),
                    "p95": s.quantile(95),
                    "target": self.targets.get(stage),
                    "count": len(s),
                }
        return out

    def model_latency(self, model: str) -> ModelLatency | None:
        with self._lock:
            return self._model_latency_locked(model)

    def _model_latency_locked(self, model: str) -> ModelLatency | None:
        s = self._models.get(model)
        if s is None or not len(s):
            return None
        t = self._ttft.get(model)
        has_t = t is not None and len(t) > 0
        return ModelLatency(
            count=len(s),
            latency_avg_s=s.avg(),
            latency_p50_s=s.quantile(50),
            latency_p95_s=s.quantile(95),
            latency_max_s=s.max(),
            ttft_p50_s=t.quantile(50) if has_t and t is not None else None,
            ttft_p95_s=t.quantile(95) if has_t and t is not None else None,
        )

    def stats_by_model(self) -> dict[str, ModelLatency]:
        with self._lock:
            out = {m: self._model_latency_locked(m) for m in self._models}
        return {m: v for m, v in out.items() if v is not None}

    def breaches(self, stat: Stat = "p95") -> list[Breach]:
        """Stages whose `stat` over the window exceeds their target, worst ratio first."""
        found: list[Breach] = []
        with self._lock:
            for stage, target in self.targets.items():
                s = self._stages.get(stage)
                if s is None or not len(s):
                    continue
                value = {"avg": s.avg, "max": s.max}.get(stat)
                v = value() if value else s.quantile(50 if stat == "p50" else 95)
                if v > target:
                    found.append(Breach(stage=stage, stat=stat, value=v, target=target))
        found.sort(key=lambda b: b.ratio, reverse=True)
        return found

    def reset(self) -> None:
        with self._lock:
            self._stages.clear()
            self._models.clear()
            self._ttft.clear()
