"""RPM/TPM per key with the `limits` library: in memory for one process, Redis for N replicas.

Sliding-window counters (one counter per window, cost is arithmetic), so a TPM hit of 50,000
tokens is one increment and not 50,000 list entries as a moving window would store. Requests
are counted when admitted; tokens are charged when the answer's usage is known (the ledger
record), so TPM refuses the request *after* the one that spent the last tokens, as OpenAI does.

When Redis is unreachable the limiter fails open (the request passes, the log says why once a
minute): budgets, which protect money, are enforced from the store and do not depend on Redis.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from limits.aio.storage import Storage
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

__all__ = ["LimitCheck", "RateLimiter", "format_reset", "storage_uri"]

log = logging.getLogger("wilton.access")


def storage_uri(redis_url: str | None) -> str:
    """`limits` async storage URI for WILTON_REDIS_URL (memory when unset)."""
    if not redis_url:
        return "async+memory://"
    if redis_url.startswith(("redis://", "rediss://")):
        return "async+" + redis_url
    raise ValueError("WILTON_REDIS_URL must start with redis:// or rediss://")


def format_reset(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: '20ms', '1.5s', '6m0s'."""
    s = max(0.0, seconds)
    if s < 1.0:
        return f"{max(1, int(s * 1000))}ms"
    if s < 60.0:
        return f"{s:.3g}s"
    m, rest = divmod(math.ceil(s), 60)
    return f"{m}m{rest}s"


@dataclass(slots=True, frozen=True)
class LimitCheck:
    """One limit's state after a check: what the x-ratelimit-* headers say."""

    kind: str          # "requests" | "tokens"
    limit: int
    remaining: int
    reset_s: float
    ok: bool

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.remaining < 0:  # not measured (admitted without stats): the limit only
            return [(f"x-ratelimit-limit-{self.kind}".encode(), str(self.limit).encode())]
        return [
            (f"x-ratelimit-limit-{self.kind}".encode(), str(self.limit).encode()),
            (f"x-ratelimit-remaining-{self.kind}".encode(), str(max(0, self.remaining)).encode()),
            (f"x-ratelimit-reset-{self.kind}".encode(), format_reset(self.reset_s).encode()),
        ]


class RateLimiter:
    """Per-key RPM and TPM. Create inside the running event loop (`start`): async clients bind to it."""

    def __init__(self, redis_url: str | None = None, *, prefix: str = "wilton") -> None:
        self.uri = storage_uri(redis_url)
        self._prefix = prefix
        self._storage: Storage | None = None
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        self._last_warning = 0.0

    @property
    def shared(self) -> bool:
        return "redis" in self.uri

    def start(self) -> None:
        from limits.aio.storage import MemoryStorage, RedisStorage
        from limits.aio.strategies import SlidingWindowCounterRateLimiter

        storage: Storage = (RedisStorage(self.uri, implementation="redispy", key_prefix=self._prefix)
                            if self.shared else MemoryStorage(self.uri))
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    def _warn(self, err: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning > 60.0:
            self._last_warning = now
            log.warning("rate limiter storage unavailable (%s): limits are not enforced", type(err).__name__)

    async def _check(self, kind: str, per_minute: int, key_id: str, cost: int, hit: bool,
                     stats: bool = True) -> LimitCheck:
        """One storage round trip to hit/test; a second for the window's state (the headers),
        taken only when asked or when the check failed."""
        from limits import RateLimitItemPerMinute

        assert self._limiter is not None, "RateLimiter.start() not called"
        item = RateLimitItemPerMinute(per_minute)
        try:
            ok = await (self._limiter.hit if hit else self._limiter.test)(item, kind, key_id, cost=cost)
            if not (stats or not ok):
                return LimitCheck(kind, per_minute, -1, -1.0, True)
            reset_at, remaining = await self._limiter.get_window_stats(item, kind, key_id)
        except Exception as e:  # storage down: fail open, loudly
            self._warn(e)
            return LimitCheck(kind, per_minute, -1, -1.0, True)
        return LimitCheck(kind, per_minute, int(remaining), max(0.0, reset_at - time.time()), bool(ok))

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None, *, stats: bool = False) -> list[LimitCheck]:
        """Count one request against RPM and test that TPM has tokens left. A failed check is last.

        Without `stats`, an admitted request costs one round trip per limit and its checks carry
        no remaining/reset figures (remaining = -1): the headers then say only the limits.
        """
        out: list[LimitCheck] = []
        if tpm:
            t = await self._check("tokens", tpm, key_id, 1, hit=False, stats=stats)
            out.append(t)
            if not t.ok:
                return out
        if rpm:
            out.append(await self._check("requests", rpm, key_id, 1, hit=True, stats=stats))
        return out

    async def charge_tokens(self, key_id: str, tpm: int, tokens: int) -> None:
        """Charge an answer's tokens. More than what is left fills the window (the library would
        refuse the whole hit and charge nothing)."""
        if tokens <= 0 or self._limiter is None:
            return
        check = await self._check("tokens", tpm, key_id, min(tokens, 10**9), hit=True, stats=False)
        if not check.ok and check.remaining > 0:
            await self._check("tokens", tpm, key_id, check.remaining, hit=True)

    def close(self) -> None:
        # the storages hold no resource that outlives the process beyond a connection pool
        self._limiter = None
        self._storage = None
