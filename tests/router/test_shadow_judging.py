"""Shadow judging end to end, in process: the router app and service over the fake upstream (real
OpenAI and Anthropic wire formats, the real provider clients), a SQLite store for the labels, a
scripted judge. The random draws are scripted so sampling and answer order are known."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from wilton_core.access.gate import Gate
from wilton_core.config import LearningConfig, StackConfig, parse_config
from wilton_core.providers.base import Provider
from wilton_core.providers.factory import make_provider
from wilton_core.router.app import RouterApp
from wilton_core.router.service import RouterService
from wilton_core.router.shadow import ShadowJudge
from wilton_core.store import open_store
from wilton_core.store.base import Store
from wilton_core.store.route_labels import read_labels
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.types import Completion

ENV = {"FAKE_ANTHROPIC_KEY": "k-anthropic", "FAKE_JUDGE_KEY": "k-judge"}
VERDICT = '{"A": 0.2, "B": 0.9}'


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(models=["local-a", "api-a", "judge"]).start() as f:
        yield f


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'labels.db'}")
    s.migrate()
    yield s
    s.close()


def _config(url: str) -> StackConfig:
    return parse_config({"models": [
        {"id": "local-a", "provider": "openai", "model": "local-a", "base_url": url + "/v1", "tier": "selfhost",
         "is_local": True},
        {"id": "api-a", "provider": "anthropic", "model": "api-a", "base_url": url, "tier": "frontier",
         "is_local": False, "capability": "advanced", "api_key_env": "FAKE_ANTHROPIC_KEY",
         "input_cost_per_mtok": 3.0, "output_cost_per_mtok": 15.0},
        {"id": "judge", "provider": "openai", "model": "judge", "base_url": url + "/v1", "tier": "edge",
         "is_local": False, "api_key_env": "FAKE_JUDGE_KEY", "input_cost_per_mtok": 1.0,
         "output_cost_per_mtok": 2.0},
    ], "routing": {"probe_models": False, "backoff_base_s": 0.001}, "learning": {"judge": "judge"}})


class Draws(random.Random):
    """random() plays a fixed cycle: each request's sampling draw, then (per comparison, once the
    answer came back) the order draw. (0.0,) = every request drawn, answers always swapped."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self._it = itertools.cycle(values)

    def random(self) -> float:
        return next(self._it)


class Gated:
    """A real provider whose calls wait for a test's go (to hold a comparison in flight)."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.go = asyncio.Event()
        self.calls = 0

    async def complete(self, body: Mapping[str, Any]) -> Completion:
        self.calls += 1
        await self.go.wait()
        return await self.inner.complete(body)

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self.inner.stream(body)

    async def list_models(self) -> list[str]:
        return await self.inner.list_models()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _service(fake: FakeUpstream, store: Store, *, share: float = 0.2, budget: float = 1.0, in_flight: int = 2,
             draws: tuple[float, ...] = (0.0,), providers: dict[str, Provider] | None = None,
             capture: bool = False) -> tuple[RouterService, ShadowJudge]:
    cfg = _config(fake.url)
    svc = RouterService(cfg, environ=ENV, providers=providers, capture_prompts=capture)
    learning = LearningConfig(shadow_share=share, shadow_budget_usd_per_hour=budget, shadow_max_in_flight=in_flight,
                              judge="judge")
    svc.shadow = ShadowJudge(learning, svc.runtimes, store=store, capture_prompts=capture,
                             rng=Draws(*draws))
    return svc, svc.shadow


def _client(svc: RouterService, gate: Gate | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=RouterApp(svc, gate=gate)), base_url="http://r")


@contextlib.asynccontextmanager
async def _serving(svc: RouterService, gate: Gate | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The service started, a client on its app; on the way out every comparison ran to its end."""
    await svc.start()
    try:
        async with _client(svc, gate) as c:
            yield c
            assert svc.shadow is not None
            await svc.shadow.drain()
    finally:
        await svc.stop()


def _calls(fake: FakeUpstream, model: str) -> int:
    return int(fake.stats()["by_model"].get(model, 0))


async def _chat(c: httpx.AsyncClient, model: str, text: str, *, stream: bool = False,
                headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
    r = await c.post("/v1/chat/completions", headers=headers or {}, json={
        "model": model, "stream": stream, "messages": [{"role": "user", "content": text}], **extra})
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("stream", [False, True])
async def test_a_local_answer_is_compared_with_the_best_api_model_and_labelled(fake: FakeUpstream, store: Store,
                                                                              stream: bool) -> None:
    fake.clear()
    fake.script("judge", reply=VERDICT)
    svc, judge = _service(fake, store, draws=(0.0, 0.9), capture=True)  # drawn; not swapped: A = local
    async with _serving(svc) as c:
        r = await _chat(c, "local-a", "what is the capital of France?", stream=stream)
    labels = read_labels(store)
    assert len(labels) == 1
    lb = labels[0]
    assert lb.source == "shadow" and lb.request_id == r.headers["x-request-id"]
    assert (lb.weak_score, lb.strong_score) == (0.2, 0.9)
    assert lb.model == "api-a" and lb.prompt is not None and "capital of France" in lb.prompt
    assert lb.detail["judge"] == "judge" and lb.detail["local_model"] == "local-a"
    assert lb.detail["served"] == "local" and lb.detail["swapped"] is False
    assert isinstance(lb.detail["cost_usd"], float) and lb.detail["cost_usd"] > 0
    # the API model got the client's conversation; the judge saw both answers
    asked = fake.last_body("api-a")
    assert "what is the capital of France?" in str(asked["messages"][-1]["content"])  # Anthropic's blocks
    shown = str(fake.last_body("judge")["messages"])
    assert "[local-a] what is the capital of France?" in shown and "[api-a] what is the capital" in shown
    assert judge.counts.sampled == 1 and judge.counts.judged == 1
    assert judge.counts.spend_usd == pytest.approx(lb.detail["cost_usd"])


async def test_an_api_answer_is_compared_with_a_local_one_and_the_order_is_undone(fake: FakeUpstream,
                                                                                 store: Store) -> None:
    fake.clear()
    fake.script("judge", reply=VERDICT)
    svc, _judge = _service(fake, store, draws=(0.0, 0.1))  # drawn; swapped: A = the API answer
    async with _serving(svc) as c:
        await _chat(c, "api-a", "explain entropy")
    (lb,) = read_labels(store)
    assert (lb.weak_score, lb.strong_score) == (0.9, 0.2)  # B was the local answer
    assert lb.detail["swapped"] is True and lb.detail["served"] == "api" and lb.detail["local_model"] == "local-a"
    assert lb.prompt is None  # prompt capture is off: the label keeps no text
    assert fake.last_body("local-a")["messages"][-1]["content"] == "explain entropy"


@pytest.mark.parametrize("stream", [False, True])
async def test_the_anthropic_messages_api_is_sampled_too(fake: FakeUpstream, store: Store, stream: bool) -> None:
    fake.clear()
    fake.script("judge", reply=VERDICT)
    svc, _judge = _service(fake, store, draws=(0.0, 0.9))
    async with _serving(svc) as c:
        r = await c.post("/v1/messages", json={"model": "local-a", "max_tokens": 64, "stream": stream,
                                               "messages": [{"role": "user", "content": "name a prime"}]})
        assert r.status_code == 200, r.text
    (lb,) = read_labels(store)
    assert (lb.weak_score, lb.strong_score) == (0.2, 0.9) and lb.detail["local_model"] == "local-a"
    assert "[local-a] name a prime" in str(fake.last_body("judge")["messages"])
    assert fake.last_body("api-a")["max_tokens"] == 64  # the client's own output cap


async def test_share_zero_samples_nothing(fake: FakeUpstream, store: Store) -> None:
    fake.clear()
    svc, judge = _service(fake, store, share=0.0, draws=(0.0,))
    async with _serving(svc) as c:
        for _ in range(3):
            await _chat(c, "local-a", "hello")
    assert read_labels(store) == []
    assert _calls(fake, "api-a") == 0 and _calls(fake, "judge") == 0
    assert judge.counts.sampled == 0


async def test_local_only_requests_never_reach_an_api_model(fake: FakeUpstream, store: Store) -> None:
    fake.clear()
    fake.script("judge", reply=VERDICT)
    svc, judge = _service(fake, store)
    gate = Gate(models={m.id: m.is_local for m in svc.config.models})
    async with _serving(svc, gate) as c:
        await _chat(c, "auto", "my private diary", headers={"x-wilton-privacy": "local-only"})
        await _chat(c, "local-a", "my private diary", headers={"x-wilton-privacy": "local-only"}, stream=True)
        await _chat(c, "local", "my private diary")  # asked for the local class
    assert _calls(fake, "local-a") == 3
    assert _calls(fake, "api-a") == 0 and _calls(fake, "judge") == 0
    assert read_labels(store) == []
    assert judge.counts.skipped["local_only"] == 3


async def test_unsupported_requests_are_skipped(fake: FakeUpstream, store: Store) -> None:
    fake.clear()
    svc, judge = _service(fake, store)
    async with _serving(svc) as c:
        await _chat(c, "local-a", "json please", response_format={"type": "json_object"})
    assert _calls(fake, "api-a") == 0 and read_labels(store) == []
    assert judge.counts.skipped["unsupported"] == 1


async def test_the_budget_cap_stops_sampling(fake: FakeUpstream, store: Store) -> None:
    fake.clear()
    fake.script("judge", reply=VERDICT)
    svc, judge = _service(fake, store, budget=0.0)
    await svc.start()
    try:
        async with _client(svc) as c:
            await _chat(c, "local-a", "hello")
        # a cap that fits one comparison's estimate: the first runs, its real spend leaves no room
        judge.window.cap_usd = 1.0
        async with _client(svc) as c:
            await _chat(c, "local-a", "hello again")
            await judge.drain()
            first = judge.window.spent(judge._clock())
            assert first > 0
            judge.window.cap_usd = first + first / 10  # less than any further comparison's estimate
            await _chat(c, "local-a", "hello again")
            await judge.drain()
    finally:
        await svc.stop()
    assert _calls(fake, "api-a") == 1 and len(read_labels(store)) == 1
    assert judge.counts.skipped["budget"] == 2
    assert judge.stats()["budget_spent_usd"] == pytest.approx(first)


async def test_busy_drops_instead_of_queueing_and_the_client_never_waits(fake: FakeUpstream, store: Store) -> None:
    fake.clear()
    fake.script("judge", reply=VERDICT)
    cfg = _config(fake.url)
    gated = Gated(make_provider(cfg.by_id()["api-a"], environ=ENV, routing=cfg.routing))
    svc, judge = _service(fake, store, in_flight=1, providers={"api-a": gated})
    async with _serving(svc) as c:
        r1 = await _chat(c, "local-a", "first")
        # the client has its answer while its comparison is still held at the API model
        for _ in range(100):
            if gated.calls:
                break
            await asyncio.sleep(0.01)
        assert gated.calls == 1 and judge.in_flight == 1 and read_labels(store) == []
        await _chat(c, "local-a", "second", stream=True)
        await _chat(c, "local-a", "third")
        assert judge.in_flight == 1  # dropped, not queued
        gated.go.set()
    assert [lb.request_id for lb in read_labels(store)] == [r1.headers["x-request-id"]]
    assert gated.calls == 1
    assert judge.counts.skipped["busy"] == 2


@pytest.mark.parametrize("reply", ["A is better than B.", '{"A": 1.5, "B": 0.3}', '{"A": "high", "B": 0}', "[0.1, 0.2]"])
async def test_a_judge_reply_that_does_not_parse_is_no_label(fake: FakeUpstream, store: Store, reply: str) -> None:
    fake.clear()
    fake.script("judge", reply=reply)
    svc, judge = _service(fake, store)
    async with _serving(svc) as c:
        await _chat(c, "local-a", "hello")
    assert read_labels(store) == []
    assert judge.counts.judge_unparsable == 1
    assert judge.counts.judged == 0


async def test_a_judge_that_refuses_json_mode_is_asked_again_without_it(fake: FakeUpstream, store: Store) -> None:
    fake.clear()
    fake.script("judge", status=400, times=1, reply=VERDICT)
    svc, _judge = _service(fake, store, draws=(0.0, 0.9))
    async with _serving(svc) as c:
        await _chat(c, "local-a", "hello")
    assert len(read_labels(store)) == 1 and _calls(fake, "judge") == 2
    assert "response_format" not in fake.last_body("judge")
    assert svc.runtimes["judge"].breaker.consecutive_failures == 0


async def test_shadow_failures_touch_no_breaker_and_no_client(fake: FakeUpstream, store: Store) -> None:
    fake.clear()
    fake.script("api-a", status=500)
    svc, judge = _service(fake, store)
    await svc.start()
    try:
        async with _client(svc) as c:
            for _ in range(3):
                await _chat(c, "local-a", "hello")
                await judge.drain()
        breaker = svc.runtimes["api-a"].breaker
        assert breaker.consecutive_failures == 0 and breaker.available(time.monotonic())
    finally:
        fake.clear()
        await svc.stop()
    assert read_labels(store) == []
    assert judge.counts.failed["answer"] == 3
    assert _calls(fake, "judge") == 0


def _toml(url: str, learning: str) -> str:
    return f"""
[[models]]
id = "local-a"
provider = "openai"
model = "local-a"
base_url = "{url}/v1"
tier = "selfhost"
is_local = true

[[models]]
id = "judge"
provider = "openai"
model = "judge"
base_url = "{url}/v1"
api_key_env = "FAKE_JUDGE_KEY"
tier = "edge"
is_local = false

[routing]
probe_models = false
{learning}
"""


@pytest.mark.parametrize("learning", ["", "[learning]\nshadow_share = 0.01\nshadow_budget_usd_per_hour = 0.5"])
async def test_the_router_wiring_is_opt_in_published_with_health_and_capped_per_worker(fake: FakeUpstream, tmp_path: Path,
                                                                            learning: str) -> None:
    from wilton_core.router.cli import build_app
    from wilton_core.settings import load_settings

    cfg = tmp_path / "wilton.toml"
    cfg.write_text(_toml(fake.url, learning))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store = open_store(url)
    store.migrate()
    # a worker of `--workers 2` runs with --workers 1 and WILTON_ROUTER_SIBLINGS=2
    _app, service, _ledger = build_app(load_settings(config=cfg, store_url=url, router_siblings=2), store=store)
    try:
        snap = service.health_snapshot()
        if not learning:
            assert service.shadow is None and "shadow" not in snap
        else:
            assert service.shadow is not None and service.shadow.window.cap_usd == pytest.approx(0.25)
            assert service.shadow.store is store
            assert snap["shadow"]["skipped"]["budget"] == 0 and snap["shadow"]["sampled"] == 0
    finally:
        store.close()
