"""The scriptable dummy provider: every script, with an injected sleep so nothing waits for real."""

from __future__ import annotations

from typing import Any

import pytest

from wilton_core.config import ModelConfig
from wilton_core.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    ContextTooLongError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from wilton_core.providers.dummy import FIXED_REPLY, DummyProvider, parse_script
from wilton_core.providers.factory import PROVIDER_CLASSES, make_provider

BODY = {"messages": [{"role": "user", "content": "say this back"}]}


class FakeSleep:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, s: float) -> None:
        self.slept.append(s)


def dummy(script: str, **kw: Any) -> DummyProvider:
    m = ModelConfig(id=f"d-{script}", provider="dummy", model=script, tier="selfhost", is_local=True, timeout_s=7)
    return DummyProvider(m, **kw)


async def test_echo_and_fixed() -> None:
    c = await dummy("echo").complete(BODY)
    assert c.data["choices"][0]["message"]["content"] == "say this back"
    assert c.usage.prompt_tokens == 4 and c.usage.completion_tokens == 4
    assert (await dummy("fixed").complete(BODY)).data["choices"][0]["message"]["content"] == FIXED_REPLY


async def test_stream_contract() -> None:
    chunks = [c async for c in dummy("echo").stream(BODY)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "say this back"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 8
    assert len({c["id"] for c in chunks}) == 1


@pytest.mark.parametrize(("script", "cls", "status"), [
    ("error", UnavailableError, 500),
    ("ratelimit", RateLimitedError, 429),
    ("badrequest", BadRequestError, 400),
    ("auth", AuthError, 401),
    ("context", ContextTooLongError, 400),
])
async def test_failure_scripts(script: str, cls: type[ProviderError], status: int) -> None:
    p = dummy(script)
    with pytest.raises(cls) as ei:
        await p.complete(BODY)
    assert ei.value.status == status and ei.value.provider == "dummy" and ei.value.model == f"d-{script}"
    with pytest.raises(cls):
        async for _ in p.stream(BODY):
            pass


async def test_ratelimit_retry_after() -> None:
    with pytest.raises(RateLimitedError) as ei:
        await dummy("ratelimit").complete(BODY)
    assert ei.value.retry_after == 1.0
    with pytest.raises(RateLimitedError) as ei:
        await dummy("ratelimit:2.5").complete(BODY)
    assert ei.value.retry_after == 2.5


async def test_slow_sleeps_the_scripted_time() -> None:
    sleep = FakeSleep()
    p = dummy("slow:250", sleep=sleep)
    await p.complete(BODY)
    assert sleep.slept == [0.25]
    sleep.slept.clear()
    _ = [c async for c in p.stream(BODY)]
    assert sum(sleep.slept) == pytest.approx(0.25) and len(sleep.slept) == 3


async def test_flaky_is_seeded_and_near_its_rate() -> None:
    async def outcomes(seed: int) -> list[bool]:
        p = dummy("flaky:0.3", seed=seed)
        out = []
        for _ in range(400):
            try:
                await p.complete(BODY)
                out.append(True)
            except UnavailableError:
                out.append(False)
        return out

    a, b = await outcomes(1), await outcomes(1)
    assert a == b
    assert 0.22 < a.count(False) / len(a) < 0.38
    assert a != await outcomes(2)


async def test_stall_and_die_fail_after_the_first_chunk() -> None:
    sleep = FakeSleep()
    for script, slept in (("stall", [7.0]), ("die", [])):
        got = []
        with pytest.raises(UnavailableError):
            async for c in dummy(script, sleep=sleep).stream(BODY):
                got.append(c)
        assert len(got) == 1 and sleep.slept == slept
        sleep.slept.clear()
        with pytest.raises(UnavailableError):
            await dummy(script, sleep=sleep).complete(BODY)
        assert sleep.slept == slept
        sleep.slept.clear()


async def test_tools_answer_with_a_call() -> None:
    body = {**BODY, "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]}
    c = await dummy("echo").complete(body)
    (call,) = c.data["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "lookup", "arguments": '{"input":"say this back"}'}
    assert c.data["choices"][0]["finish_reason"] == "tool_calls"
    c = await dummy("echo").complete({**body, "tool_choice": "none"})
    assert c.data["choices"][0]["message"]["content"] == "say this back"


@pytest.mark.parametrize("bad", ["nope", "slow", "flaky:2", "flaky:x", "slow:-5"])
def test_bad_scripts_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="dummy model"):
        parse_script(bad)


async def test_factory_builds_every_provider_without_network() -> None:
    assert set(PROVIDER_CLASSES) == {"openai", "ollama", "gemini", "anthropic", "dummy", "minilm"}
    for name in PROVIDER_CLASSES:
        m = ModelConfig(id=f"x-{name}", provider=name, model="echo", tier="edge", is_local=False,
                        kind="embedding" if name == "minilm" else "chat")
        p = make_provider(m, environ={})
        assert p.name == name and p.model is m
        await p.aclose()
