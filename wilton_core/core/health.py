"""Per-model circuit breaker and retry delays: pure, driven by an explicit `now`.

Closed: calls flow. After `failures_to_open` consecutive failures (or one 429 that names a
Retry-After) the breaker opens for a cooldown that doubles on each re-open up to a cap. When the
cooldown ends it is half-open: exactly one probe call is let through; success closes it, failure
re-opens it with the longer cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Breaker", "BreakerState", "backoff_delay"]


class BreakerState:
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class Breaker:
    failures_to_open: int = 3
    base_cooldown_s: float = 10.0
    max_cooldown_s: float = 300.0
    consecutive_failures: int = 0
    opened_count: int = 0
    open_until: float = 0.0
    probing: bool = False
    last_error: str | None = None

    def state(self, now: float) -> str:
        if self.open_until == 0.0:
            return BreakerState.CLOSED
        if now < self.open_until:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def available(self, now: float) -> bool:
        """Could a call be attempted now? (Does not reserve the half-open probe.)"""
        st = self.state(now)
        return st == BreakerState.CLOSED or (st == BreakerState.HALF_OPEN and not self.probing)

    def acquire(self, now: float) -> bool:
        """Reserve the right to call: always in closed state, once in half-open state."""
        st = self.state(now)
        if st == BreakerState.CLOSED:
            return True
        if st == BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_count = 0
        self.open_until = 0.0
        self.probing = False
        self.last_error = None

    def record_failure(self, now: float, kind: str, retry_after: float | None = None) -> None:
        self.last_error = kind
        self.consecutive_failures += 1
        half_open_probe_failed = self.probing
        self.probing = False
        if retry_after is not None and retry_after > 0:
            # The upstream told us exactly how long it is unavailable: believe it.
            self.open_until = max(self.open_until, now + min(retry_after, self.max_cooldown_s))
            self.opened_count = max(self.opened_count, 1)
            return
        if half_open_probe_failed or self.consecutive_failures >= self.failures_to_open:
            cooldown = min(self.base_cooldown_s * (2 ** self.opened_count), self.max_cooldown_s)
            self.opened_count += 1
            self.open_until = now + cooldown

    def cooldown_remaining(self, now: float) -> float:
        return max(0.0, self.open_until - now) if self.open_until else 0.0


def backoff_delay(attempt: int, base_s: float, max_s: float, u: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, base * 2**attempt)].

    `u` is a uniform draw in [0, 1) supplied by the caller so the function stays pure.
    """
    cap: float = min(max_s, base_s * 2.0 ** max(0, attempt))
    return cap * min(max(u, 0.0), 1.0)
