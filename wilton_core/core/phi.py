"""Sliding-window phi estimator: share of requests (or tokens) served locally, pure, explicit `now`.

The window is the half-open interval (now - window_s, now]. Events are expected in roughly
non-decreasing time order (the router adds them as requests finish); a late event is inserted in
place, which costs a short scan from the right end. Queries must use a non-decreasing `now`: an
event evicted at one `now` is gone for an earlier one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["PhiEstimator", "PhiEvent", "phi_brute_force"]

Basis = Literal["requests", "tokens"]


@dataclass(slots=True, frozen=True)
class PhiEvent:
    ts: float
    is_local: bool
    tokens: int = 0


class PhiEstimator:
    """Running counts over a sliding window; O(1) amortised per event and per query."""

    __slots__ = ("_events", "_local_requests", "_local_tokens", "_requests", "_tokens", "basis", "window_s")

    def __init__(self, window_s: float = 300.0, basis: Basis = "requests") -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError("window_s must be a positive finite number")
        if basis not in ("requests", "tokens"):
            raise ValueError("basis must be 'requests' or 'tokens'")
        self.window_s = float(window_s)
        self.basis: Basis = basis
        self._events: deque[PhiEvent] = deque()
        self._requests = 0
        self._local_requests = 0
        self._tokens = 0
        self._local_tokens = 0

    def add(self, ts: float, is_local: bool, tokens: int = 0) -> None:
        if not math.isfinite(ts):
            return
        ev = PhiEvent(float(ts), bool(is_local), max(0, int(tokens)))
        if not self._events or self._events[-1].ts <= ev.ts:
            self._events.append(ev)
        else:
            i = len(self._events)
            while i > 0 and self._events[i - 1].ts > ev.ts:
                i -= 1
            self._events.insert(i, ev)
        self._requests += 1
        self._tokens += ev.tokens
        if ev.is_local:
            self._local_requests += 1
            self._local_tokens += ev.tokens

    def _evict(self, now: float) -> None:
        cutoff = now - self.window_s
        ev = self._events
        while ev and ev[0].ts <= cutoff:
            old = ev.popleft()
            self._requests -= 1
            self._tokens -= old.tokens
            if old.is_local:
                self._local_requests -= 1
                self._local_tokens -= old.tokens

    def counts(self, now: float) -> tuple[int, int, int, int]:
        """(requests, local_requests, tokens, local_tokens) in (now - window, now].

        Events stamped after `now` are not counted (a replayed clock may lag the events).
        """
        self._evict(now)
        r, lr, t, lt = self._requests, self._local_requests, self._tokens, self._local_tokens
        # Future events are rare (clock skew between threads); subtract them by scanning the tail.
        for e in reversed(self._events):
            if e.ts <= now:
                break
            r -= 1
            t -= e.tokens
            if e.is_local:
                lr -= 1
                lt -= e.tokens
        return r, lr, t, lt

    def phi(self, now: float) -> float | None:
        """Local share over the window; None when the window holds nothing to divide by."""
        r, lr, t, lt = self.counts(now)
        if self.basis == "tokens":
            return lt / t if t else None
        return lr / r if r else None

    def __len__(self) -> int:
        return len(self._events)


def phi_brute_force(
    events: Iterable[PhiEvent], now: float, window_s: float, basis: Basis = "requests"
) -> float | None:
    """Reference definition the estimator must match: count every event in (now - window, now]."""
    num = den = 0
    for e in events:
        if now - window_s < e.ts <= now:
            w = e.tokens if basis == "tokens" else 1
            den += w
            if e.is_local:
                num += w
    return num / den if den else None
