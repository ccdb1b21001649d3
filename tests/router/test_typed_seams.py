"""The service's typed seams (issue 15): `decide(prefer=)`, typed outcomes, and the HTTP rendering.

The service returns data — a `Route`, a `ChatOutcome` with `RoutingFacts`, a `ChunkStream` — and
only router/render.py turns it into headers and SSE bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson
import pytest

from wilton_core.access.caller import Caller
from wilton_core.config import parse_config
from wilton_core.errors import NoHealthyModelError, ProviderError
from wilton_core.router.fallback import Attempt
from wilton_core.router.render import DONE, chat_sse, routing_headers
from wilton_core.router.results import ChunkStream, RoutingFacts, StreamFailure
from wilton_core.router.service import RouterService
from wilton_core.types import LedgerRecord

BODY = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}]}


class Rows:
    def __init__(self) -> None:
        self.rows: list[LedgerRecord] = []

    def submit(self, record: LedgerRecord) -> None:
        self.rows.append(record)


class FlatScorer:
    def score(self, messages_or_text: Any, intent: Any = None) -> float:
        return 0.2


def _service(models: list[tuple[str, str, bool]], ledger: Rows) -> RouterService:
    cfg = parse_config({"models": [{"id": mid, "provider": "dummy", "model": script, "tier": "selfhost" if local
                                    else "edge", "is_local": local, "capability": "standard"}
                                   for mid, script, local in models],
                        "routing": {"probe_models": False, "backoff_base_s": 0.001}})
    return RouterService(cfg, ledger=ledger, environ={}, scorer=FlatScorer())


async def test_prefer_puts_usable_preferences_first_and_drops_unknown_ones() -> None:
    svc = _service([("a", "echo", True), ("b", "echo", True), ("c", "echo", False)], Rows())
    await svc.start()
    try:
        route = svc.decide(dict(BODY), time.perf_counter(), prefer=["nope", "c"])
        assert route.chain[0] == "c" and set(route.chain) >= {"a", "b"}
        pinned = svc.decide(dict(BODY), time.perf_counter(), prefer=["c", "a"], fallback=False)
        assert pinned.chain == ["c"]
        # "local" restricts the choice: an API preference cannot serve it and is dropped
        local = svc.decide({**BODY, "model": "local"}, time.perf_counter(), prefer=["c"])
        assert "c" not in local.chain
    finally:
        await svc.stop()


async def test_prefer_serves_when_the_automatic_chain_has_nothing_and_writes_one_row() -> None:
    rows = Rows()
    svc = _service([("a", "echo", True), ("b", "echo", True)], rows)
    await svc.start()
    try:
        now = time.monotonic()
        for _ in range(10):  # break a's breaker: the selector leaves it out of the automatic chain
            svc.runtimes["a"].breaker.record_failure(now, "unavailable")
        svc.runtimes["b"].breaker.record_failure(now, "unavailable")
        for _ in range(10):
            svc.runtimes["b"].breaker.record_failure(now, "unavailable")
        with pytest.raises(NoHealthyModelError):
            svc.decide(dict(BODY), time.perf_counter())
        assert len(rows.rows) == 1  # the refusal without a preference is a row
        route = svc.decide(dict(BODY), time.perf_counter(), prefer=["a"])
        assert route.chain == ["a"]
        assert len(rows.rows) == 1  # no second row for the same request: one decide, no retry
    finally:
        await svc.stop()


async def test_complete_returns_data_and_facts_not_bytes() -> None:
    rows = Rows()
    svc = _service([("a", "error", True), ("b", "echo", True)], rows)
    await svc.start()
    try:
        route = svc.decide(dict(BODY), time.perf_counter(), prefer=["a", "b"])
        out = await svc.complete(dict(BODY), route)
        assert out.data["id"] == route.request_id and out.data["model"] == "b"
        assert out.facts.model.id == "b" and out.facts.fallbacks
        assert set(out.facts.fallbacks) == {"a:unavailable"}  # retried on a, then fell back to b
        assert out.data["usage"]["prompt_tokens"] == out.usage.prompt_tokens
        assert rows.rows[-1].model_id == "b" and rows.rows[-1].attempt_errors == ",".join(out.facts.fallbacks)
    finally:
        await svc.stop()


def test_routing_headers_hide_fallback_detail_from_non_admin_keys() -> None:
    cfg = parse_config({"models": [{"id": "m", "provider": "dummy", "model": "echo", "tier": "selfhost",
                                    "is_local": True, "capability": "standard"}]})
    facts = RoutingFacts("r1", cfg.models[0], "chat", 0.25, (Attempt("x", "unavailable"),), 0.0015)
    admin = dict(routing_headers(facts))
    assert admin[b"x-wilton-fallbacks"] == b"x:unavailable" and admin[b"x-wilton-difficulty"] == b"0.250"
    assert admin[b"x-request-id"] == b"r1" and admin[b"x-wilton-overhead-ms"] == b"1.500"
    key = dict(routing_headers(facts, Caller(key_id="k", admin=False, headers=((b"x-ratelimit-limit", b"5"),))))
    assert key[b"x-wilton-fallbacks"] == b"1" and key[b"x-ratelimit-limit"] == b"5"


async def test_a_chunk_that_does_not_encode_ends_the_stream_as_an_upstream_failure() -> None:
    cfg = parse_config({"models": [{"id": "m", "provider": "dummy", "model": "echo", "tier": "selfhost",
                                    "is_local": True, "capability": "standard"}]})
    seen: list[BaseException] = []

    async def chunks() -> AsyncGenerator[dict[str, Any] | StreamFailure, None]:
        yield {"choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": {"prompt_tokens": 1}}
        try:
            yield {"choices": [{"index": 0, "delta": {"content": {1, 2}}}]}  # a set: JSON has no word for it
        except ProviderError as e:
            seen.append(e)
            yield StreamFailure(e.kind, "upstream stream from 'm' failed", "upstream_error")

    facts = RoutingFacts("r1", cfg.models[0], "chat", 0.1, (), 0.0)
    out = [b async for b in chat_sse(ChunkStream(facts, chunks()), include_usage=False)]
    first = orjson.loads(out[0][len(b"data: "):])
    assert "usage" not in first  # the client did not ask for it
    assert b'"upstream_error"' in out[1] and out[-1] == DONE and len(out) == 3
    assert len(seen) == 1 and seen[0].blame == "upstream"
