"""Hostile requests and misbehaving upstreams against the gateway's own code path (issue 13).

The router app and service run in-process; every model is a real provider client whose upstream is
faked at the wire (httpx.MockTransport speaking OpenAI's format), so request validation, provider
encoding, the fallback executor, breakers, deferrals and ledger rows are the shipped ones. Each test
states the promise it checks: a client's mistake is a 4xx that never touches a model's health; a
rate limit defers, it does not break; every request is a ledger row; nothing is a 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from wilton_core.config import ModelConfig, RoutingConfig, StackConfig
from wilton_core.providers.factory import make_provider
from wilton_core.router.app import RouterApp
from wilton_core.router.service import RouterService
from wilton_core.types import LedgerRecord


@dataclass
class Upstream:
    """An OpenAI-compatible upstream at the wire: answers, or what `script` says for the next calls."""

    model: str
    script: list[Callable[[dict[str, Any]], httpx.Response]] = field(default_factory=list)
    calls: int = 0
    usage: Any = None

    def handle(self, body: dict[str, Any]) -> httpx.Response:
        self.calls += 1
        if self.script:
            return self.script.pop(0)(body)
        usage = self.usage if self.usage is not None else {"prompt_tokens": 5, "completion_tokens": 2,
                                                           "total_tokens": 7}
        if body.get("stream"):
            chunks = [
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": self.model,
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]},
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": self.model,
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": self.model,
                 "choices": [], "usage": usage},
            ]
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "created": 1, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer from {self.model}"},
                         "finish_reason": "stop"}],
            "usage": usage,
        })


def status(code: int, message: str = "upstream says no", headers: dict[str, str] | None = None):
    def make(_: dict[str, Any]) -> httpx.Response:
        return httpx.Response(code, json={"error": {"message": message, "type": "x"}}, headers=headers or {})
    return make


class Ledger:
    def __init__(self) -> None:
        self.rows: list[LedgerRecord] = []

    def submit(self, record: LedgerRecord) -> None:
        self.rows.append(record)


@dataclass
class Gateway:
    client: httpx.AsyncClient
    service: RouterService
    upstreams: dict[str, Upstream]
    ledger: Ledger
    sleeps: list[float]

    def breaker(self, mid: str):
        return self.service.runtimes[mid].breaker

    async def chat(self, content: Any = "hello", **extra: Any) -> httpx.Response:
        body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
        return await self.client.post("/v1/chat/completions", json=body)


def _models(local: list[str], api: list[str]) -> list[ModelConfig]:
    out = [ModelConfig(id=m, provider="openai", model=m, base_url="http://fake/v1", tier="selfhost",
                       is_local=True, supports_tools=True, context_window=8192) for m in local]
    out += [ModelConfig(id=m, provider="openai", model=m, base_url="http://fake/v1", tier="frontier",
                        is_local=False, supports_tools=True, context_window=128000,
                        input_cost_per_mtok=3.0, output_cost_per_mtok=15.0) for m in api]
    return out


@pytest.fixture
async def gw():
    made: list[Gateway] = []

    async def build(local: list[str] = ["local-a"], api: list[str] = ["api-a"], **routing: Any) -> Gateway:  # noqa: B006
        models = _models(local, api)
        ups = {m.id: Upstream(m.id) for m in models}

        def handler(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            return ups[body["model"]].handle(body)

        transport = httpx.MockTransport(handler)
        providers = {m.id: make_provider(m, transport=transport, environ={}) for m in models}
        cfg = StackConfig(models=models, routing=RoutingConfig(**{"backoff_base_s": 0.001, **routing}))
        ledger = Ledger()
        svc = RouterService(cfg, ledger=ledger, providers=providers, environ={})
        sleeps: list[float] = []
        real_sleep = asyncio.sleep

        async def sleep(s: float) -> None:  # real waits, recorded (short: Retry-After values are small here)
            sleeps.append(s)
            await real_sleep(s)

        svc.executor._sleep = sleep
        await svc.start()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=RouterApp(svc)), base_url="http://gw")
        g = Gateway(client, svc, ups, ledger, sleeps)
        made.append(g)
        return g

    yield build
    for g in made:
        await g.client.aclose()
        await g.service.stop()


def _nested(depth: int) -> Any:
    v: Any = "x"
    for _ in range(depth):
        v = {"a": v}
    return v


# ---- client input never touches model health ------------------------------------------------------


@pytest.mark.parametrize("where", ["metadata", "tool_parameters"])
async def test_deep_json_is_a_400_and_opens_no_breaker(gw, where: str) -> None:
    g = await gw()
    extra: dict[str, Any] = {"metadata": _nested(300)} if where == "metadata" else {
        "tools": [{"type": "function", "function": {"name": "f", "parameters": _nested(300)}}]}
    for _ in range(5):
        r = await g.chat(**extra)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "nesting_too_deep"
    assert all(u.calls == 0 for u in g.upstreams.values())  # nothing reached a provider
    assert all(g.breaker(m).consecutive_failures == 0 for m in g.upstreams)
    assert (await g.chat()).status_code == 200  # a legitimate client is served at once


async def test_nesting_at_the_documented_limit_is_accepted(gw) -> None:
    g = await gw()
    r = await g.chat(metadata=_nested(60))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("tool_calls", [5, ["x"], [{"function": "f"}], [{"id": "1", "function": {"name": 3}}]])
async def test_malformed_tool_calls_are_a_400(gw, tool_calls: Any) -> None:
    g = await gw()
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": None, "tool_calls": tool_calls},
                                          {"role": "tool", "tool_call_id": "1", "content": "ok"}]}
    r = await g.client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith("messages[1].tool_calls")
    assert all(u.calls == 0 for u in g.upstreams.values())


async def test_context_too_long_from_the_upstream_does_not_cool_the_model_down(gw) -> None:
    g = await gw()
    up = g.upstreams["local-a"]
    up.script = [status(400, "This model's maximum context length is 8192 tokens")] * 5
    for _ in range(5):
        r = await g.chat(model="local-a")
        # the client's to fix: a 400 with the upstream's own words, never an outage
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "context_length_exceeded" and "8192" in r.json()["error"]["message"]
    assert g.breaker("local-a").consecutive_failures == 0 and g.breaker("local-a").open_until == 0.0
    r = await g.chat(model="local-a")  # script exhausted: the model answers, it was never cooled
    assert r.status_code == 200 and r.headers["x-wilton-model"] == "local-a"


async def test_cjk_prompt_size_is_not_underestimated(gw) -> None:
    """A Chinese prompt of 6,000 characters is ~6,000+ tokens, not 1,500: it must not be routed to a
    4,096-token model that would refuse it."""
    from wilton_core.core.messages import estimate_tokens

    assert estimate_tokens([{"role": "user", "content": "中" * 6000}]) >= 6000
    assert estimate_tokens([{"role": "user", "content": "word " * 400}]) == 500


# ---- breakers always recover ----------------------------------------------------------------------


async def test_an_unexpected_error_during_the_half_open_probe_releases_it(gw) -> None:
    g = await gw(local=["local-a"], api=[], cooldown_failures=1, cooldown_s=0.05, max_attempts_per_model=1)
    up = g.upstreams["local-a"]
    up.script = [status(500)]
    assert (await g.chat(model="local-a")).status_code == 503
    await asyncio.sleep(0.06)  # half-open now
    rt = g.service.runtimes["local-a"]
    real = rt.provider.complete

    async def broken(body):  # a bug of ours inside the probe call, not an upstream failure
        raise TypeError("boom")

    rt.provider.complete = broken  # type: ignore[method-assign]
    r = await g.chat(model="local-a")
    assert r.status_code == 503, r.text
    rt.provider.complete = real  # type: ignore[method-assign]
    assert not rt.breaker.probing
    r = await g.chat(model="local-a")
    assert r.status_code == 200, r.text  # the next request probed and closed the breaker


@pytest.mark.parametrize("usage", [{"prompt_tokens": "n/a", "completion_tokens": None}, {"prompt_tokens": 1e308},
                                   {"prompt_tokens": -5, "completion_tokens": -1}, "garbage", [1, 2]])
async def test_malformed_upstream_usage_never_fails_a_request_nor_loses_its_row(gw, usage: Any) -> None:
    g = await gw()
    for up in g.upstreams.values():
        up.usage = usage
    for stream in (False, True):
        r = await g.chat(stream=stream, stream_options={"include_usage": True} if stream else None)
        assert r.status_code == 200, r.text
    assert len(g.ledger.rows) == 2
    for row in g.ledger.rows:
        assert row.status == "ok" and 0 <= row.tokens_in <= 10_000_000 and row.tokens_out >= 0
        assert row.cost_usd == row.cost_usd and row.cost_usd < 1e6  # finite, no overflow


async def test_a_deeply_nested_upstream_reply_is_an_upstream_failure_with_fallback(gw) -> None:
    g = await gw(local=["local-a", "local-b"], api=[])

    def deep(_: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, text=json.dumps({"choices": [{"message": {"role": "assistant", "content": "x"},
                                                                 "finish_reason": "stop"}], "extra": _nested(300)}))

    g.upstreams["local-a"].script = [deep] * 3
    r = await g.chat(model="auto")
    assert r.status_code == 200, r.text


# ---- rate limits are deferrals ----------------------------------------------------------------------


async def test_a_429_storm_that_clears_within_the_budget_costs_latency_not_errors(gw) -> None:
    g = await gw(local=["local-a"], api=["api-a"], max_retry_after_s=5.0, cooldown_failures=1)
    g.upstreams["local-a"].script = [status(503)] * 50  # the local model is down
    g.upstreams["api-a"].script = [status(429, headers={"retry-after": "0.2"})] * 4
    results = await asyncio.gather(*(g.chat("prove the theorem carefully", model="api") for _ in range(4)))
    assert [r.status_code for r in results] == [200] * 4, [r.text for r in results]
    assert g.breaker("api-a").consecutive_failures == 0 and g.breaker("api-a").open_until == 0.0
    # and the next requests are served at once, not refused for a 10-second cooldown
    r = await g.chat("prove the theorem carefully", model="api")
    assert r.status_code == 200 and r.headers["x-wilton-model"] == "api-a"


async def test_a_pinned_429_past_the_budget_is_a_429_with_retry_after(gw) -> None:
    g = await gw(max_retry_after_s=5.0)
    g.upstreams["api-a"].script = [status(429, headers={"retry-after": "30"})]
    r = await g.chat(model="api-a")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert r.headers["retry-after"] == "30"
    assert g.breaker("api-a").consecutive_failures == 0
    assert g.sleeps == []  # 30 s is past the 5 s budget: no pointless wait


async def test_giving_up_on_broken_models_says_when_to_come_back(gw) -> None:
    g = await gw(local=["local-a"], api=[], cooldown_failures=1, cooldown_s=7.0, max_attempts_per_model=1)
    g.upstreams["local-a"].script = [status(500)] * 3
    assert (await g.chat()).status_code == 503
    r = await g.chat()  # every breaker open: refused before any call
    assert r.status_code == 503 and int(r.headers["retry-after"]) in range(6, 9)


# ---- every request is a ledger row ------------------------------------------------------------------


async def test_every_routed_request_is_a_ledger_row_with_its_status(gw) -> None:
    g = await gw(local=["local-a"], api=[], cooldown_failures=1, cooldown_s=30.0, max_attempts_per_model=1)
    assert (await g.chat()).status_code == 200
    assert (await g.chat(model="nope")).status_code == 404
    g.upstreams["local-a"].script = [status(500)]
    assert (await g.chat()).status_code == 503  # upstream failed
    for _ in range(3):
        assert (await g.chat()).status_code == 503  # every breaker open
    statuses = [(r.status, r.http_status, r.error_class) for r in g.ledger.rows]
    assert statuses == [("ok", 200, None), ("error", 404, "model_not_found"),
                        ("error", 503, "no_healthy_model")] + [("error", 503, "no_healthy_model")] * 3
    assert len({r.request_id for r in g.ledger.rows}) == 6


async def test_a_bug_is_a_500_and_still_a_ledger_row(gw) -> None:
    g = await gw()

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    g.service.latency.record_model = crash  # type: ignore[method-assign]  # fails after the upstream answered
    r = await g.chat()
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "a bug" not in r.text  # no internals to the client
    assert [(row.status, row.http_status, row.error_class) for row in g.ledger.rows] == [
        ("error", 500, "internal_error")]


# ---- protocol details -----------------------------------------------------------------------------------


async def test_stream_null_is_not_streaming(gw) -> None:
    g = await gw()
    r = await g.chat(stream=None)
    assert r.status_code == 200 and r.json()["object"] == "chat.completion"


@pytest.mark.parametrize("rf", [{"type": "yaml"}, {"type": "json_schema"}, {"type": "json_schema", "json_schema": 3}])
async def test_response_format_is_checked(gw, rf: Any) -> None:
    g = await gw()
    r = await g.chat(response_format=rf)
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("response_format")


async def test_valid_response_formats_pass(gw) -> None:
    g = await gw()
    for rf in ({"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}):
        assert (await g.chat(response_format=rf)).status_code == 200
