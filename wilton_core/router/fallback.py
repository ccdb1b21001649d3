"""Run a request down an ordered chain of models: retries, backoff, breakers, deferrals, fallback.

Policy, per model in the chain, by who caused the error (`ProviderError.blame`, see errors.py):
- the model must be callable now: its breaker closed (or the single half-open probe free) and
  not deferred by a rate limit; otherwise it is skipped for now;
- upstream failures (unavailable, auth) count toward the model's breaker; transient ones are
  retried on the same model up to `max_attempts_per_model` with full-jitter backoff;
- a rate limit (429) defers the model until its Retry-After (or a jittered backoff) and moves
  on at once: the model is healthy, so nothing counts against it;
- errors the request caused (bad request, context too long) and our own bugs move on at once
  and leave the model's health as it was;
- whatever happens — any exception, a cancelled call — a half-open probe is never left held.
When every model was tried or skipped and some were only deferred, the request waits for the
soonest of them, within `max_retry_after_s` in total, and tries again: a 429 storm that clears
within that budget costs the client latency, not an error. Past it the request fails with the
time a capable model is expected back (`NoHealthyModelError.retry_after`).

Streams fall back only before their first chunk with content (a role-only preamble is held
back until then); the caller handles failures after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wilton_core.config import ModelConfig, RoutingConfig
from wilton_core.core.health import Breaker, backoff_delay
from wilton_core.errors import (
    InternalError,
    NoHealthyModelError,
    ProviderError,
    UnavailableError,
)
from wilton_core.providers.base import Provider
from wilton_core.router.tracing import CURRENT
from wilton_core.router.wire import MAX_JSON_DEPTH, json_depth_exceeds
from wilton_core.types import Completion

__all__ = ["Attempt", "ChainResult", "FallbackExecutor", "ModelRuntime", "StreamStart", "aclose_quietly"]

_T = TypeVar("_T")

log = logging.getLogger("wilton.router")

# attempt kinds after which a model cannot serve this request, however long the request waits
_REQUEST_KINDS = frozenset({"bad_request", "context_too_long", "internal_error"})
# of those, the ones that are the client's to fix (when every model says so: a 400)
_CLIENT_KINDS = frozenset({"bad_request", "context_too_long"})


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
        b = rt.breaker
        if err.blame == "upstream":
            b.record_failure(self._clock(), err.kind, err.retry_after)
        elif err.blame == "rate_limit":
            b.record_rate_limit(self._clock(), err.retry_after, self._rng.random(),
                                self._cfg.rate_limit_backoff_s, self._cfg.rate_limit_backoff_max_s)
        else:  # the request's fault or ours: not the model's
            b.release()

    def _no_model(self, chain: Sequence[str], attempts: list[Attempt]) -> NoHealthyModelError:
        kinds: dict[str, list[str]] = {}
        for a in attempts:
            kinds.setdefault(a.model_id, []).append(a.kind)
        parts = []
        for mid in chain:
            if mid not in kinds:
                parts.append(f"{mid} ({self._why_skipped(mid)})")
                continue
            seen = kinds[mid]
            parts += [f"{mid} ({k}{f' x{seen.count(k)}' if seen.count(k) > 1 else ''})"
                      for k in dict.fromkeys(seen)]
        msg = "No eligible model could serve the request. Tried: " + (", ".join(parts) or "nothing eligible")
        tried = [(a.model_id, a.kind) for a in attempts] + [(m, "cooldown") for m in chain if m not in kinds]
        now = self._clock()
        waits = [self._rt[m].breaker.ready_at(now) - now for m in chain
                 if self._rt[m].breaker.ready_at(now) > now]
        # a request-caused error on a model means it cannot serve this request whenever it is back
        blocked = {a.model_id for a in attempts if a.kind in _REQUEST_KINDS}
        rate_limited = all(m not in blocked and self._rt[m].breaker.deferred_until > now
                           and self._rt[m].breaker.open_until == 0.0 for m in chain) and bool(chain)
        rejected = None
        refused_by = {a.model_id for a in attempts if a.kind in _CLIENT_KINDS}
        if chain and all(m in refused_by for m in chain):
            kinds_seen = {a.kind for a in attempts if a.kind in _CLIENT_KINDS}
            rejected = "context_too_long" if kinds_seen == {"context_too_long"} else "bad_request"
            # the client needs the upstream's own words to fix its request
            why = "; ".join(dict.fromkeys(a.message for a in attempts if a.kind in _CLIENT_KINDS and a.message))
            msg = f"Every eligible model refused the request: {why or msg}"
        return NoHealthyModelError(msg, tried, retry_after=None if rejected else (min(waits) if waits else None),
                                   rate_limited=rate_limited, rejected=rejected)

    def _why_skipped(self, mid: str) -> str:
        b = self._rt[mid].breaker
        now = self._clock()
        if b.open_until != 0.0:
            return "cooling down"
        if b.deferred_until > now:
            return "rate limited"
        return "cooling down"

    async def _call(self, rt: ModelRuntime, call: Callable[[ModelRuntime], Awaitable[_T]]) -> _T:
        """One call. Every way out settles the breaker: success closes it, a ProviderError goes to
        `_fail` (which records or releases), anything else releases a held half-open probe."""
        span = CURRENT.get()  # h6: a child span per attempt when tracing is on (None when off)
        try:
            if span is None:
                result = await call(rt)
            else:
                with span.attempt(rt.cfg.id, rt.cfg.provider):
                    result = await call(rt)
        except ProviderError:
            raise
        except Exception as e:
            # A bug of ours (or a provider's) must not be blamed on the model, nor leave the probe held.
            rt.breaker.release()
            log.exception("unexpected error calling model %s", rt.cfg.id)
            raise InternalError(f"{rt.cfg.id}: internal error ({type(e).__name__})", provider=rt.cfg.provider,
                                model=rt.cfg.id) from e
        except BaseException:
            rt.breaker.release()  # cancelled (client gone, shutdown): says nothing about the model
            raise
        rt.breaker.record_success()
        return result

    async def _first_success(
        self, chain: Sequence[str], call: Callable[[ModelRuntime], Awaitable[_T]]
    ) -> tuple[ModelRuntime, _T, list[Attempt], float]:
        """Walk the chain with retries, breakers and deferrals until `call` succeeds on some model."""
        attempts: list[Attempt] = []
        done: set[str] = set()  # models this request has finished with (success impossible now)
        budget = max(0.0, self._cfg.max_retry_after_s)
        deadline = self._clock() + budget
        while True:
            for mid in chain:
                if mid in done:
                    continue
                rt = self._rt[mid]
                for attempt in range(self._cfg.max_attempts_per_model):
                    if not rt.breaker.acquire(self._clock()):
                        break
                    t0 = time.perf_counter()
                    try:
                        result = await self._call(rt, call)
                    except ProviderError as err:
                        self._fail(rt, err, attempts)
                        if err.blame in ("request", "internal"):
                            done.add(mid)
                            break
                        if err.blame == "rate_limit":
                            break  # deferred: maybe waited for below, if nothing else answers
                        if attempt + 1 < self._cfg.max_attempts_per_model and err.retryable:
                            await self._sleep(backoff_delay(attempt, self._cfg.backoff_base_s,
                                                            self._cfg.backoff_max_s, self._rng.random()))
                            continue
                        done.add(mid)
                        break
                    return rt, result, attempts, time.perf_counter() - t0
            # Nothing answered. Wait for the soonest model that is only deferred (rate limited),
            # if it is back within what is left of this request's wait budget.
            now = self._clock()
            waits = [self._rt[m].breaker.deferred_until for m in chain
                     if m not in done and self._rt[m].breaker.open_until == 0.0
                     and now < self._rt[m].breaker.deferred_until <= deadline]
            if not waits:
                raise self._no_model(chain, attempts)
            await self._sleep(min(waits) - now)

    async def run(self, chain: Sequence[str], call: Callable[[ModelRuntime], Awaitable[_T]]
                  ) -> tuple[ModelRuntime, _T, list[Attempt], float]:
        """`call` down `chain` with this executor's retries, breakers and deferrals (embeddings, audio
        engines): (runtime that answered, its result, failed attempts before it, seconds of the last call)."""
        return await self._first_success(chain, call)

    async def complete(self, chain: Sequence[str], body: Mapping[str, Any]) -> ChainResult:
        async def call(rt: ModelRuntime) -> Completion:
            completion = await rt.provider.complete(body)
            if json_depth_exceeds(completion.data):
                # the client could not be sent this (and the encoder would fail): the upstream's fault
                raise UnavailableError(f"{rt.cfg.id}: malformed reply: nested deeper than {MAX_JSON_DEPTH} levels",
                                       provider=rt.cfg.provider, model=rt.cfg.id)
            return completion

        rt, completion, attempts, upstream_s = await self._first_success(chain, call)
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
                await aclose_quietly(agen)
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
        await aclose_quietly(agen)


async def aclose_quietly(stream: AsyncIterator[Any]) -> None:
    """Close an upstream stream now (releasing its connection); closing a broken one must not mask
    the real error. A plain iterator has nothing to close."""
    if isinstance(stream, AsyncGenerator):
        with contextlib.suppress(Exception):
            await stream.aclose()
