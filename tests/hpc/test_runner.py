"""BatchRunner against a router faked at the wire (httpx.MockTransport): order, results, crashes."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from wilton_core.hpc.repo import TaskRepo
from wilton_core.hpc.runner import BatchBusy, BatchRunner, RouterUnreachable, parse_prices, parse_reply

MODELS = {"object": "list", "data": [
    {"id": "auto", "object": "model", "wilton": {"description": "..."}},
    {"id": "local-small", "wilton": {"tier": "selfhost", "is_local": True, "input_cost_per_mtok": 0.0,
                                     "output_cost_per_mtok": 0.0}},
    {"id": "sim-frontier", "wilton": {"tier": "frontier", "is_local": False, "input_cost_per_mtok": 2.5,
                                      "output_cost_per_mtok": 10.0}},
]}


class FakeRouter:
    """Answers like wilton-router: prompts containing 'hard' go to sim-frontier."""

    def __init__(self, fail_after: int | None = None, status_for: dict[str, int] | None = None) -> None:
        self.prompts: list[str] = []
        self.fail_after = fail_after
        self.status_for = status_for or {}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS)
        body = json.loads(request.content)
        prompt = body["messages"][-1]["content"]
        with self.lock:
            if self.fail_after is not None and len(self.prompts) >= self.fail_after:
                raise httpx.ConnectError("connection refused", request=request)
            self.prompts.append(prompt)
        if prompt in self.status_for:
            return httpx.Response(self.status_for[prompt], json={"error": {"message": "No configured model"}})
        api = "hard" in prompt
        model = "sim-frontier" if api else "local-small"
        headers = {"x-wilton-model": model, "x-wilton-tier": "frontier" if api else "selfhost",
                   "x-wilton-local": "false" if api else "true", "x-wilton-intent": "chat",
                   "x-wilton-difficulty": "0.900" if api else "0.100",
                   "x-wilton-fallbacks": "local-small:unavailable" if api else "0"}
        return httpx.Response(200, headers=headers, json={
            "id": "x", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer to {prompt}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}})


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def runner(repo: TaskRepo, router: FakeRouter, **kw) -> BatchRunner:
    return BatchRunner(repo, "http://router.test", transport=httpx.MockTransport(router), clock=Clock(), **kw)


async def test_runs_highest_priority_first_and_stores_results(repo, make_spec):
    bid = repo.create_batch(make_spec(priorities=[0, 3, 1, 3, 2]), now=0, concurrency=1)
    fake = FakeRouter()
    seen = []
    out = await runner(repo, fake, concurrency=1).run(bid, lambda t, r: seen.append(t.idx))
    assert out.status == "done" and out.ran == 5
    assert fake.prompts == ["task 1", "task 3", "task 4", "task 2", "task 0"]
    assert seen == [1, 3, 4, 2, 0]
    tasks = repo.tasks(bid)
    assert all(t.result.status == "ok" and t.result.text == f"answer to task {t.idx}" for t in tasks)
    started = sorted(tasks, key=lambda t: t.started_at)
    assert [t.idx for t in started] == [1, 3, 4, 2, 0]
    assert repo.batch(bid).status == "done"


async def test_cost_tier_and_fallbacks_from_router_answer(repo, make_spec):
    spec = make_spec(1)
    bid = repo.create_batch(spec, now=0, concurrency=1)
    repo.store.execute("UPDATE tasks SET request = ? WHERE batch_id = ?",
                       (json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hard one"}]}), bid))
    await runner(repo, FakeRouter()).run(bid)
    (t,) = repo.tasks(bid)
    r = t.result
    assert (r.model_id, r.tier, r.is_local, r.fallbacks, r.difficulty) == ("sim-frontier", "frontier", False, 1, 0.9)
    assert (r.tokens_in, r.tokens_out) == (1000, 100)
    assert r.cost_usd == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)
    assert r.latency_s >= 0


async def test_router_errors_are_recorded_per_task(repo, make_spec):
    bid = repo.create_batch(make_spec(3), now=0, concurrency=2)
    out = await runner(repo, FakeRouter(status_for={"task 1": 503}), concurrency=2).run(bid)
    assert out.status == "done"
    by_idx = {t.idx: t.result for t in repo.tasks(bid)}
    assert by_idx[1].status == "error" and by_idx[1].http_status == 503
    assert by_idx[1].error == "HTTP 503: No configured model"
    assert by_idx[0].status == by_idx[2].status == "ok"


async def test_concurrency_is_bounded(repo, make_spec):
    import asyncio

    active = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS)
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return FakeRouter()(request)

    bid = repo.create_batch(make_spec(12), now=0, concurrency=3)
    r = BatchRunner(repo, "http://router.test", transport=httpx.MockTransport(handler), concurrency=3)
    assert (await r.run(bid)).ran == 12
    assert peak == 3


async def test_unreachable_router_keeps_tasks_pending_then_resume_finishes(repo, make_spec):
    bid = repo.create_batch(make_spec(6), now=0, concurrency=1)
    with pytest.raises(RouterUnreachable, match="wiltonctl hpc resume"):
        await runner(repo, FakeRouter(fail_after=2), concurrency=1).run(bid)
    info = repo.batch(bid)
    assert info.counts == {"ok": 2, "pending": 4} and info.status == "pending" and info.lease_owner is None
    fake = FakeRouter()
    out = await runner(repo, fake).run(bid)
    assert out.status == "done" and len(fake.prompts) == 4          # only the unfinished ones
    assert repo.batch(bid).counts == {"ok": 6}


async def test_resume_after_a_crashed_runner(repo, make_spec):
    # a runner took the batch, started two tasks, finished none, and died (its lease ran out)
    bid = repo.create_batch(make_spec(4), now=0, concurrency=2)
    assert repo.acquire(bid, "dead-runner", now=100.0, ttl_s=30)
    repo.start_task(bid, 0, now=100.0)
    repo.start_task(bid, 1, now=100.0)
    live = BatchRunner(repo, "http://router.test", transport=httpx.MockTransport(FakeRouter()),
                       clock=lambda: 110.0)
    with pytest.raises(BatchBusy):
        await live.run(bid)                                         # lease still valid: hands off
    fake = FakeRouter()
    late = BatchRunner(repo, "http://router.test", transport=httpx.MockTransport(fake), clock=lambda: 131.0)
    out = await late.run(bid)
    assert out.status == "done" and sorted(fake.prompts) == ["task 0", "task 1", "task 2", "task 3"]
    assert {t.idx: t.attempts for t in repo.tasks(bid)} == {0: 2, 1: 2, 2: 1, 3: 1}


def test_parse_helpers():
    assert parse_prices(MODELS) == {"local-small": (0.0, 0.0), "sim-frontier": (2.5, 10.0)}
    r = parse_reply(200, {}, b"{not json", 0.1, {})
    assert r.status == "error" and r.error.startswith("malformed reply")
    tool = json.dumps({"choices": [{"message": {"content": None, "tool_calls": [{"id": "c1"}]}}]}).encode()
    assert parse_reply(200, {"x-wilton-model": "m"}, tool, 0.1, {}).text == '[{"id": "c1"}]'
    e = parse_reply(429, {}, b"rate limited", 0.2, {})
    assert e.status == "error" and e.error == "HTTP 429: rate limited"
    body = json.dumps({"error": {"message": "No configured model can serve this request: it needs image input",
                                 "type": "invalid_request_error", "param": "messages",
                                 "code": "no_capable_model"}}).encode()
    e = parse_reply(400, {}, body, 0.01, {})
    assert e.error == "HTTP 400: no_capable_model: No configured model can serve this request: it needs image input"
