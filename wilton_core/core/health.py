"""Per-model circuit breaker, rate-limit deferral and retry delays: pure, driven by an explicit `now`.

Two different things make a model unavailable for a while, and they are kept apart:

- **Failures** (the upstream is broken: connection refused, 5xx, timeouts, malformed replies,
  a wrong key). After `failures_to_open` consecutive failures the breaker opens for a cooldown
  that doubles on each re-open up to a cap. When the cooldown ends it is half-open: exactly one
  probe call is let through; success closes it, failure re-opens it with the longer cooldown.
- **Rate limits** (the upstream is healthy and said "not now": a 429). The model is *deferred*
  until its Retry-After — or, when none was given, a jittered backoff that grows with
  consecutive 429s — and then used again at once. A 429 never counts as a failure, never opens
  the breaker, and never lengthens a later cooldown.

Errors the request itself caused (bad input, too long for this model) are neither: the caller
releases the probe (`release`) and the model's health does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Breaker", "BreakerState", "backoff_delay", "exponential_delay"]


class BreakerState:
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    DEFERRED = "deferred"  # rate limited: healthy, but asked us to wait


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
    deferred_until: float = 0.0
    consecutive_rate_limits: int = 0

    def state(self, now: float) -> str:
        if self.open_until != 0.0:
            return BreakerState.OPEN if now < self.open_until else BreakerState.HALF_OPEN
        if now < self.deferred_until:
            return BreakerState.DEFERRED
        return BreakerState.CLOSED

    def broken(self, now: float) -> bool:
        """Failing: open, or half-open with its probe out. A rate-limited model is not broken."""
        return self.open_until != 0.0 and (now < self.open_until or self.probing)

    def available(self, now: float) -> bool:
        """Could a call be attempted now? (Does not reserve the half-open probe.)"""
        if now < self.deferred_until:
            return False
        st = self.state(now)
        return st == BreakerState.CLOSED or (st == BreakerState.HALF_OPEN and not self.probing)

    def acquire(self, now: float) -> bool:
        """Reserve the right to call: always when closed, once when half-open, never when deferred."""
        if now < self.deferred_until:
            return False
        st = self.state(now)
        if st == BreakerState.CLOSED:
            return True
        if st == BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def ready_at(self, now: float) -> float:
        """Earliest time a call could be attempted (now when available; a held probe counts as now)."""
        t = max(now, self.deferred_until)
        if self.open_until != 0.0:
            t = max(t, self.open_until)
        return t

    def release(self) -> None:
        """End a call that says nothing about the model's health (the request's own fault, a
        cancelled call, a bug of ours): a held half-open probe is given back, nothing is counted."""
        self.probing = False

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_count = 0
        self.open_until = 0.0
        self.probing = False
        self.last_error = None
        self.consecutive_rate_limits = 0
        self.deferred_until = 0.0

    def record_rate_limit(self, now: float, retry_after: float | None, u: float,
                          backoff_base_s: float = 0.5, backoff_max_s: float = 30.0) -> float:
        """A 429: defer the model (Retry-After, else jittered backoff); returns the wait chosen.

        `u` is a uniform draw in [0, 1) for the jitter, supplied by the caller (pure function).
        """
        self.probing = False
        self.last_error = "rate_limited"
        self.consecutive_rate_limits += 1
        if retry_after is not None and retry_after >= 0:
            wait = min(retry_after, self.max_cooldown_s)
        else:
            # "equal jitter": at least half the exponential step, so a storm backs off for real
            cap = exponential_delay(self.consecutive_rate_limits - 1, backoff_base_s, backoff_max_s)
            wait = min(cap / 2 + cap / 2 * min(max(u, 0.0), 1.0), self.max_cooldown_s)
        self.deferred_until = max(self.deferred_until, now + wait)
        return wait

    def record_failure(self, now: float, kind: str, retry_after: float | None = None) -> None:
        self.last_error = kind
        self.consecutive_failures += 1
        half_open_probe_failed = self.probing
        self.probing = False
        if retry_after is not None and retry_after > 0:
            # A broken upstream that said how long it will be down (503 + Retry-After): believe it.
            self.open_until = max(self.open_until, now + min(retry_after, self.max_cooldown_s))
            self.opened_count = max(self.opened_count, 1)
            return
        if half_open_probe_failed or self.consecutive_failures >= self.failures_to_open:
            cooldown = exponential_delay(self.opened_count, self.base_cooldown_s, self.max_cooldown_s)
            self.opened_count += 1
            self.open_until = now + cooldown

    def cooldown_remaining(self, now: float) -> float:
        return max(0.0, self.ready_at(now) - now)


def exponential_delay(n: int, base_s: float, max_s: float) -> float:
    """`base * 2**n`, capped at `max_s` (n below 0 counts as 0; the exponent is bounded, so a long
    failure streak can never overflow). The one growth rule of every retry, cooldown and lockout."""
    return float(min(max_s, base_s * 2.0 ** min(max(0, n), 60)))


def backoff_delay(attempt: int, base_s: float, max_s: float, u: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, exponential_delay(attempt, base, max)].

    `u` is a uniform draw in [0, 1) supplied by the caller so the function stays pure.
    """
    return exponential_delay(attempt, base_s, max_s) * min(max(u, 0.0), 1.0)
