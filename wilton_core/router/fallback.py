"""Run a request down an ordered chain of models: retries, backoff, breakers, fallback.

Policy, per model in the chain:
- the model's breaker must let the call through (closed, or the single half-open probe);
- transient errors (unavailable, rate limited) are retried up to `max_attempts_per_model` with
  full-jitter backoff; a 429 that names a Retry-After moves on to the next model at once (its
  breaker stays open for that long) unless it is the last model standing and the wait is short;
- non-transient errors (auth, bad request, context too long) move on to the next model at once:
  another model may well accept the same request. Bad requests do not count against the
  model's health — they are the request's fault, not the model's.
A request fails only when every model in the chain has failed or is cooling down.

Streams fall back only before their first chunk with content (a role-only preamble is held
back until then); the caller handles failures after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wilton_core.config import ModelConfig, RoutingConfig
from wilton_core.core.health import Breaker, backoff_delay
from wilton_core.errors import (
    BadRequestError,
    NoHealthyModelError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from wilton_core.providers.base import Provider
from wilton_core.types import Completion

__all__ = ["Attempt", "ChainResult", "FallbackExecutor", "ModelRuntime", "StreamStart"]

_T = TypeVar("_T")


@dataclass(slots=True)
class ModelRuntime:
    """What one router process knows about one model: its client and its health."""

    cfg: ModelConfig
    provider: Provider
    breaker: Breaker
    configured: bool = True


@dataclass(slots=True)
class Attempt:
    model_id: str
    kind: str
    retry_after: float | None = None
    message: str = ""


@dataclass(slots=True)
class ChainResult:
    runtime: ModelRuntime
    completion: Completion
    attempts: list[Attempt]
    upstream_s: float


@dataclass(slots=True)
class StreamStart:
    """A stream whose first chunk has arrived: the model is committed from here on."""

    runtime: ModelRuntime
    first: dict[str, Any]
    rest: AsyncIterator[dict[str, Any]]
    attempts: list[Attempt]
    ttft_s: float
    upstream_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class FallbackExecutor:
    def __init__(
        self,
        runtimes: Mapping[str, ModelRuntime],
        routing: RoutingConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._rt = runtimes
        self._cfg = routing
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    def _fail(self, rt: ModelRuntime, err: ProviderError, attempts: list[Attempt]) -> None:
        attempts.append(Attempt(rt.cfg.id, err.kind, err.retry_after, err.message[:300]))
        if isinstance(err, BadRequestError):
            # the request's fault, not the model's: release a half-open probe without penalty
            rt.breaker.probing = False
            return
        rt.breaker.record_failure(self._clock(), err.kind,
                                  err.retry_after if isinstance(err, RateLimitedError) else None)

    async def _wait_before_retry(self, rt: ModelRuntime, err: ProviderError, attempt: int,
                                 last_model: bool) -> bool:
        """Sleep before retrying the same model; False means: move on instead."""
        if not err.retryable:
            return False
        if isinstance(err, RateLimitedError) and err.retry_after:
            if not last_model or err.retry_after > self._cfg.max_retry_after_s:
                return False
            await self._sleep(err.retry_after)
            # the wait is over: the breaker's cooldown was exactly this wait
            rt.breaker.open_until = 0.0 if rt.breaker.consecutive_failures < rt.breaker.failures_to_open \
                else rt.breaker.open_until
            return True
        await self._sleep(backoff_delay(attempt, self._cfg.backoff_base_s, self._cfg.backoff_max_s,
                                        self._rng.random()))
        return True

    def _no_model(self, chain: Sequence[str], attempts: list[Attempt]) -> NoHealthyModelError:
        kinds: dict[str, list[str]] = {}
        for a in attempts:
            kinds.setdefault(a.model_id, []).append(a.kind)
        parts = []
        for mid in chain:
            if mid not in kinds:
                parts.append(f"{mid} (cooling down)")
                continue
            seen = kinds[mid]
            parts += [f"{mid} ({k}{f' x{seen.count(k)}' if seen.count(k) > 1 else ''})"
                      for k in dict.fromkeys(seen)]
        msg = "No eligible model could serve the request. Tried: " + (", ".join(parts) or "nothing eligible")
        tried = [(a.model_id, a.kind) for a in attempts] + [(m, "cooldown") for m in chain if m not in kinds]
        return NoHealthyModelError(msg, tried)

    async def _first_success(
        self, chain: Sequence[str], call: Callable[[ModelRuntime], Awaitable[_T]]
    ) -> tuple[ModelRuntime, _T, list[Attempt], float]:
        """Walk the chain with retries and breakers until `call` succeeds on some model."""
        attempts: list[Attempt] = []
        for pos, mid in enumerate(chain):
            rt = self._rt[mid]
            last = pos == len(chain) - 1
            for attempt in range(self._cfg.max_attempts_per_model):
                if not rt.breaker.acquire(self._clock()):
                    break
                t0 = time.perf_counter()
                try:
                    result = await call(rt)
                except ProviderError as err:
                    self._fail(rt, err, attempts)
                    if attempt + 1 < self._cfg.max_attempts_per_model and await self._wait_before_retry(
                        rt, err, attempt, last
                    ):
                        continue
                    break
                rt.breaker.record_success()
                return rt, result, attempts, time.perf_counter() - t0
        raise self._no_model(chain, attempts)

    async def complete(self, chain: Sequence[str], body: Mapping[str, Any]) -> ChainResult:
        rt, completion, attempts, upstream_s = await self._first_success(
            chain, lambda rt: rt.provider.complete(body))
        return ChainResult(rt, completion, attempts, upstream_s)

    async def open_stream(self, chain: Sequence[str], body: Mapping[str, Any]) -> StreamStart:
        async def first_chunks(rt: ModelRuntime) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]:
            agen = rt.provider.stream(body)
            try:
                held = [await agen.__anext__()]
                # A role-only preamble carries nothing yet: committing on it would turn a stall,
                # a drop or garbage right after it into a client-visible error instead of a fallback.
                while _is_preamble(held[-1]) and len(held) < PREAMBLE_MAX_CHUNKS:
                    try:
                        held.append(await agen.__anext__())
                    except StopAsyncIteration:
                        break
            except StopAsyncIteration:
                raise UnavailableError("upstream closed the stream with no data",
                                       provider=rt.cfg.provider, model=rt.cfg.id) from None
            except BaseException:
                await _aclose(agen)
                raise
            return held[0], (agen if len(held) == 1 else _resume(held[1:], agen))

        rt, (first, rest), attempts, ttft = await self._first_success(chain, first_chunks)
        return StreamStart(rt, first, rest, attempts, ttft)


PREAMBLE_MAX_CHUNKS = 8


def _is_preamble(chunk: Mapping[str, Any]) -> bool:
    """A chunk with choices but no content, tool call or finish reason: the role announcement."""
    choices = chunk.get("choices")
    if not choices or chunk.get("usage"):
        return False
    for c in choices:
        d = c.get("delta") or {}
        if c.get("finish_reason") or d.get("content") or d.get("tool_calls") or d.get("function_call") \
                or d.get("refusal"):
            return False
    return True


async def _resume(held: list[dict[str, Any]], agen: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    try:
        for chunk in held:
            yield chunk
        async for chunk in agen:
            yield chunk
    finally:
        await _aclose(agen)


async def _aclose(agen: AsyncIterator[Any]) -> None:
    close = getattr(agen, "aclose", None)
    if close is not None:
        # closing a broken upstream stream must not mask the real error
        with contextlib.suppress(Exception):
            await close()
