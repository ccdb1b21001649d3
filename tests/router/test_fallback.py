"""The fallback executor against a scripted in-memory provider (the Provider protocol's test double)."""

from __future__ import annotations

import pytest

from wilton_core.config import ModelConfig, RoutingConfig
from wilton_core.core.health import Breaker
from wilton_core.errors import (
    AuthError,
    BadRequestError,
    NoHealthyModelError,
    RateLimitedError,
    UnavailableError,
)
from wilton_core.router.fallback import FallbackExecutor, ModelRuntime
from wilton_core.types import Completion, Usage


class Scripted:
    """Raises the scripted errors in order, then answers."""

    name = "scripted"

    def __init__(self, model: ModelConfig, script: list[Exception | None]) -> None:
        self.model = model
        self.script = list(script)
        self.calls = 0

    def _next(self) -> None:
        self.calls += 1
        if self.script:
            err = self.script.pop(0)
            if err is not None:
                raise err

    async def complete(self, body):
        self._next()
        return Completion({"choices": [{"message": {"content": self.model.id}}]}, Usage(3, 2))

    async def stream(self, body):
        self._next()
        yield {"choices": [{"delta": {"content": self.model.id}}]}
        yield {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    async def list_models(self):
        return [self.model.model]

    async def aclose(self):
        pass


def _model(mid: str, local: bool = True) -> ModelConfig:
    return ModelConfig(id=mid, provider="openai", model=mid, tier="selfhost" if local else "frontier",
                       is_local=local)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _executor(scripts: dict[str, list], **routing) -> tuple[FallbackExecutor, dict[str, Scripted], Clock, list]:
    clock = Clock()
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)
        clock.t += s

    providers = {mid: Scripted(_model(mid), s) for mid, s in scripts.items()}
    rts = {mid: ModelRuntime(p.model, p, Breaker(3, 10, 300)) for mid, p in providers.items()}
    cfg = RoutingConfig(backoff_base_s=0.01, **routing)
    return FallbackExecutor(rts, cfg, clock=clock, sleep=sleep), providers, clock, sleeps


async def test_first_model_answers():
    ex, p, _, _ = _executor({"a": [], "b": []})
    res = await ex.complete(["a", "b"], {})
    assert res.runtime.cfg.id == "a" and res.attempts == [] and p["b"].calls == 0


async def test_transient_error_is_retried_on_same_model_with_backoff():
    ex, p, _, sleeps = _executor({"a": [UnavailableError("boom")], "b": []})
    res = await ex.complete(["a", "b"], {})
    assert res.runtime.cfg.id == "a" and p["a"].calls == 2 and len(sleeps) == 1
    assert [a.kind for a in res.attempts] == ["unavailable"]


async def test_429_with_retry_after_moves_to_next_model_at_once():
    ex, p, _, sleeps = _executor({"a": [RateLimitedError("slow down", retry_after=30)], "b": []})
    res = await ex.complete(["a", "b"], {})
    assert res.runtime.cfg.id == "b" and p["a"].calls == 1 and sleeps == []
    # a is cooling down for the Retry-After: the next request goes straight to b
    res2 = await ex.complete(["a", "b"], {})
    assert res2.runtime.cfg.id == "b" and p["a"].calls == 1


async def test_429_on_last_model_waits_retry_after_when_short():
    ex, p, _, sleeps = _executor({"a": [RateLimitedError("x", retry_after=1.5)]})
    res = await ex.complete(["a"], {})
    assert res.runtime.cfg.id == "a" and sleeps == [1.5] and p["a"].calls == 2


async def test_non_transient_errors_fall_back_without_retry():
    ex, p, _, _ = _executor({"a": [AuthError("no")], "b": [BadRequestError("nope")], "c": []})
    res = await ex.complete(["a", "b", "c"], {})
    assert res.runtime.cfg.id == "c" and p["a"].calls == 1 and p["b"].calls == 1
    assert [(a.model_id, a.kind) for a in res.attempts] == [("a", "auth"), ("b", "bad_request")]


async def test_all_failing_raises_naming_what_was_tried():
    ex, _, _, _ = _executor({"a": [UnavailableError("x")] * 5, "b": [AuthError("y")]})
    with pytest.raises(NoHealthyModelError) as ei:
        await ex.complete(["a", "b"], {})
    assert "a (unavailable x2)" in ei.value.message and "b (auth)" in ei.value.message


async def test_breaker_skips_open_model_then_probes_after_cooldown():
    ex, p, clock, _ = _executor({"a": [UnavailableError("x")] * 3, "b": []}, max_attempts_per_model=1)
    for _ in range(3):
        assert (await ex.complete(["a", "b"], {})).runtime.cfg.id == "b"
    assert p["a"].calls == 3
    assert (await ex.complete(["a", "b"], {})).runtime.cfg.id == "b"
    assert p["a"].calls == 3  # open: skipped
    clock.t += 10.0
    assert (await ex.complete(["a", "b"], {})).runtime.cfg.id == "a"  # half-open probe succeeds
    assert p["a"].calls == 4


async def test_stream_falls_back_before_first_chunk():
    ex, p, _, _ = _executor({"a": [UnavailableError("x")] * 2, "b": []})
    start = await ex.open_stream(["a", "b"], {})
    assert start.runtime.cfg.id == "b" and p["a"].calls == 2
    assert start.first["choices"][0]["delta"]["content"] == "b"
    rest = [c async for c in start.rest]
    assert rest[-1]["usage"]["completion_tokens"] == 1


async def test_stream_success_closes_a_half_open_breaker():
    """A stream that answers is a success: the half-open probe must not stay reserved forever."""
    ex, _, clock, _ = _executor({"a": [UnavailableError("x")] * 3, "b": []}, max_attempts_per_model=1)
    for _ in range(3):
        await ex.complete(["a", "b"], {})
    clock.t += 10.0  # cooldown over: half-open
    start = await ex.open_stream(["a", "b"], {})
    assert start.runtime.cfg.id == "a"
    assert (await ex.complete(["a", "b"], {})).runtime.cfg.id == "a"  # closed again, not stuck probing
