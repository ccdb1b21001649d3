import asyncio
import json

import httpx
import pytest

from wilton_core.errors import UnavailableError
from wilton_core.registry import registry as reg
from wilton_core.registry.registry import (
    ModelRegistry,
    ProbeResult,
    RetestPolicy,
    due_for_retest,
    next_retest_at,
    scrub,
)

from .conftest import model

KEY = "gsk_abcdefghijklmnopqrstuvwxyz0123456789"


def ticking(step=0.25):
    t = [100.0]

    def clock():
        t[0] += step
        return t[0]

    return clock


async def test_available_model_sends_a_short_real_generation(upstream):
    m = model("groq-8b", name="llama-3.1-8b-instant", api_key_env="GROQ_API_KEY")
    env = {"GROQ_API_KEY": KEY}
    r = await reg.test_model(
        m, provider_factory=reg.default_provider_factory(httpx.MockTransport(upstream), env),
        environ=env, clock=ticking(), now=lambda: 42.0)
    assert r == ProbeResult("groq-8b", "available", 250.0, 42.0, None, 0)
    (req,) = upstream.requests
    sent = json.loads(req.content)
    assert sent["model"] == "llama-3.1-8b-instant"
    assert sent["max_tokens"] <= 16 and sent["messages"][0]["role"] == "user"
    assert req.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(("status", "headers", "expect", "kind"), [
    (429, {"retry-after": "7"}, "rate_limited", "rate_limited"),
    (401, {}, "failed", "auth"),
    (503, {}, "failed", "unavailable"),
    (400, {}, "failed", "bad_request"),
])
async def test_upstream_failures_are_classified(upstream, status, headers, expect, kind):
    m = model("g", api_key_env="GROQ_API_KEY")
    env = {"GROQ_API_KEY": KEY}
    # the upstream echoes the key back: it must not survive into the stored error
    upstream.set("g", status, {"error": {"message": f"bad thing for key {KEY}", "type": "x"}}, headers)
    r = await reg.test_model(m, provider_factory=reg.default_provider_factory(httpx.MockTransport(upstream), env),
                             environ=env)
    assert r.status == expect and r.error_kind == kind and r.latency_ms is None
    assert KEY not in r.error and "gsk_" not in r.error
    assert r.ok == (expect == "rate_limited")


async def test_unconfigured_model_is_not_called(upstream):
    m = model("g", api_key_env=["GROQ_API_KEY", "GROQ_KEY"])
    r = await reg.test_model(m, provider_factory=reg.default_provider_factory(httpx.MockTransport(upstream), {}),
                             environ={})
    assert r.status == "untested" and r.error == "not_configured: set GROQ_API_KEY or GROQ_KEY"
    assert upstream.requests == []


async def test_timeout_and_connection_refused():
    class Slow(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            await asyncio.sleep(5)
            raise AssertionError("unreachable")

    m = model("local", tier="selfhost", is_local=True)
    r = await reg.test_model(m, provider_factory=reg.default_provider_factory(Slow(), {}), timeout=0.05)
    assert r.status == "failed" and r.error.startswith("timeout:")
    # a real refused connection through the real client (port 9 on loopback: nothing listens)
    dead = model("dead", base_url="http://127.0.0.1:9/v1", tier="selfhost", is_local=True)
    r = await reg.test_model(dead, provider_factory=reg.default_provider_factory(None, {}), timeout=5)
    assert r.status == "failed" and r.error_kind == "unavailable"


async def test_factory_and_provider_bugs_become_failed_results():
    def broken_factory(m):
        raise ValueError("no such provider")

    r = await reg.test_model(model("x"), provider_factory=broken_factory)
    assert r.status == "failed" and r.error == "config: no such provider"

    class Exploding:
        async def complete(self, body):
            raise UnavailableError("upstream went away")

        async def aclose(self):
            raise RuntimeError("close also fails")

    r = await reg.test_model(model("y"), provider_factory=lambda m: Exploding())
    assert r.error == "unavailable: upstream went away"


async def test_test_all_runs_concurrently_and_bounded(upstream):
    running, peak = [0], [0]

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            await asyncio.sleep(0.02)
            running[0] -= 1
            return upstream(request)

    models = [model(f"m{i}") for i in range(6)]
    seen = []
    out = await reg.test_all(models, timeout=2, concurrency=3, on_result=seen.append,
                             provider_factory=reg.default_provider_factory(Counting(), {}))
    assert set(out) == {f"m{i}" for i in range(6)} and all(r.status == "available" for r in out.values())
    assert peak[0] == 3 and len(seen) == 6


async def test_registry_in_memory_counts_failures_and_lists_rows(upstream):
    upstream.set("bad", 503, {"error": {"message": "down"}})
    models = [model("good", input_cost_per_mtok=0.05, output_cost_per_mtok=0.08), model("bad"),
              model("nokey", api_key_env="NOPE_KEY")]
    r = ModelRegistry(models, transport=httpx.MockTransport(upstream), environ={}, clock=lambda: 1000.0)
    out = await r.test()
    assert set(out) == {"good", "bad"}            # default: configured models only
    out = await r.test(["bad"])
    assert out["bad"].failures == 2
    rows = {row.id: row for row in r.rows()}
    assert rows["good"].status == "available" and rows["good"].price == "$0.05/$0.08 per Mtok"
    assert rows["bad"].status == "failed" and rows["bad"].error.startswith("unavailable")
    assert rows["nokey"].configured is False and rows["nokey"].status == "untested"
    assert r.due(1000.0 + 59) == [] and r.due(1000.0 + 120) == ["bad"]
    with pytest.raises(KeyError, match="configured: good, bad, nokey"):
        r.get("missing")


def test_retest_schedule_is_pure_backoff():
    p = RetestPolicy(failed_base_s=60, failed_factor=2, failed_max_s=600, rate_limited_s=30,
                     available_every_s=None)
    assert due_for_retest(None, 0.0, p)
    assert due_for_retest(ProbeResult("m", "untested"), 0.0, p)
    f = [ProbeResult("m", "failed", None, 1000.0, "x", n) for n in (1, 2, 3, 10)]
    assert [next_retest_at(x, p) for x in f] == [1060.0, 1120.0, 1240.0, 1600.0]
    assert not due_for_retest(f[1], 1119.0, p) and due_for_retest(f[1], 1120.0, p)
    ok = ProbeResult("m", "available", 10.0, 1000.0)
    assert next_retest_at(ok, p) is None and not due_for_retest(ok, 1e12, p)
    assert next_retest_at(ok, RetestPolicy(available_every_s=3600)) == 4600.0
    assert next_retest_at(ProbeResult("m", "rate_limited", None, 1000.0, None, 1), p) == 1030.0


def test_scrub():
    s = scrub("Incorrect API key provided: sk-proj-abcdefghijkl. Bearer abcdefghijk  and key=AIzaSecret",
              ["my-own-secret"])
    assert "sk-proj" not in s and "abcdefghijk" not in s and "AIzaSecret" not in s
    assert scrub("leak my-own-secret here", ["my-own-secret"]) == "leak *** here"
    assert len(scrub("x" * 1000)) == 240
