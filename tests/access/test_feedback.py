"""POST /v1/feedback in the real router app (in process, ASGI) over a fake upstream at the wire:
bad inputs, key scopes, unknown ids, a feedback that arrives before its ledger row, disabled."""

from __future__ import annotations

from typing import Any

import pytest

from tests.access.conftest import MASTER
from wilton_core.access.caller import Caller
from wilton_core.access.keys import KeyRepo, KeySpec
from wilton_core.config import load_config
from wilton_core.errors import RequestError
from wilton_core.router.feedback import Feedback, LedgerHit, pick_row, validate_feedback
from wilton_core.router.service import RouterService
from wilton_core.store.route_labels import count_labels, read_labels


def _auth(key: str | None) -> dict[str, str]:
    return {} if key is None else {"authorization": f"Bearer {key}"}


async def _feedback(gw: Any, key: str | None, body: Any) -> Any:
    return await gw.client.post("/v1/feedback", headers=_auth(key), json=body)


async def _served(gw: Any, key: str | None, model: str, content: str = "what is a prime number?") -> str:
    r = await gw.chat(key, model=model, content=content)
    assert r.status_code == 200, r.text
    return str(r.headers["x-request-id"])


@pytest.mark.parametrize(("body", "param", "code"), [
    ([1, 2], None, "invalid_type"),
    ({"score": 1}, "request_id", "missing_required_parameter"),
    ({"request_id": 7, "score": 1}, "request_id", "invalid_type"),
    ({"request_id": "", "score": 1}, "request_id", "invalid_value"),
    ({"request_id": "a b", "score": 1}, "request_id", "invalid_value"),
    ({"request_id": "x" * 129, "score": 1}, "request_id", "invalid_value"),
    ({"request_id": "r1"}, "score", "missing_required_parameter"),
    ({"request_id": "r1", "score": True}, "score", "invalid_type"),
    ({"request_id": "r1", "score": "1"}, "score", "invalid_type"),
    ({"request_id": "r1", "score": 1.5}, "score", "invalid_value"),
    ({"request_id": "r1", "score": -0.1}, "score", "invalid_value"),
    ({"request_id": "r1", "score": 1, "comment": 3}, "comment", "invalid_type"),
    ({"request_id": "r1", "score": 1, "comment": "x" * 1001}, "comment", "invalid_value"),
    ({"request_id": "r1", "score": 1, "scroe": 1}, "scroe", "unknown_parameter"),
])
async def test_bad_inputs_are_openai_errors(make_gateway: Any, body: Any, param: str | None, code: str) -> None:
    gw = await make_gateway()
    r = await _feedback(gw, MASTER, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert count_labels(gw.store) == []


async def test_not_json_too_large_and_wrong_method(make_gateway: Any) -> None:
    gw = await make_gateway()
    r = await gw.client.post("/v1/feedback", headers=_auth(MASTER), content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    big = b'{"request_id": "r1", "score": 1, "comment": "' + b"x" * (gw.service.routing.max_body_bytes + 1) + b'"}'
    r = await gw.client.post("/v1/feedback", headers=_auth(MASTER), content=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    r = await gw.client.get("/v1/feedback", headers=_auth(MASTER))
    assert r.status_code == 405


async def test_local_answer_fills_weak_api_answer_fills_strong(make_gateway: Any) -> None:
    gw = await make_gateway(capture_prompts=True)
    local = await _served(gw, MASTER, "local-a", "name three prime numbers")
    api = await _served(gw, MASTER, "api-x", "prove that there are infinitely many primes")
    r = await _feedback(gw, MASTER, {"request_id": local, "score": 0, "comment": "wrong answer"})
    assert r.status_code == 200, r.text
    assert r.json() == {"object": "feedback", "request_id": local, "model": "local-a", "tier": "weak",
                        "score": 0.0, "learnable": True}
    r = await _feedback(gw, MASTER, {"request_id": api, "score": 1})
    assert r.status_code == 200 and r.json()["tier"] == "strong"
    labels = {lb.request_id: lb for lb in read_labels(gw.store)}
    assert (labels[local].weak_score, labels[local].strong_score) == (0.0, None)
    assert labels[local].prompt is not None and "three prime numbers" in labels[local].prompt
    assert labels[local].detail == {"tier": "weak", "comment": "wrong answer"}
    assert (labels[api].weak_score, labels[api].strong_score, labels[api].model) == (None, 1.0, "api-x")
    # a second feedback replaces the first
    assert (await _feedback(gw, MASTER, {"request_id": local, "score": 1})).status_code == 200
    assert [lb.weak_score for lb in read_labels(gw.store) if lb.request_id == local] == [1.0]


async def test_without_prompt_capture_the_label_is_kept_but_not_learnable(make_gateway: Any) -> None:
    gw = await make_gateway()
    rid = await _served(gw, MASTER, "local-a")
    r = await _feedback(gw, MASTER, {"request_id": rid, "score": 0.5})
    assert r.status_code == 200 and r.json()["learnable"] is False
    (counts,) = count_labels(gw.store)
    assert (counts.source, counts.total, counts.with_prompt, counts.both_tiers) == ("feedback", 1, 0, 0)


async def test_unknown_id_is_404(make_gateway: Any) -> None:
    gw = await make_gateway()
    r = await _feedback(gw, MASTER, {"request_id": "never-issued-42", "score": 1})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "request_not_found" and r.json()["error"]["param"] == "request_id"
    assert count_labels(gw.store) == []


async def test_a_key_rates_only_its_own_requests(make_gateway: Any) -> None:
    gw = await make_gateway()
    repo = KeyRepo(gw.store)
    _, alice = repo.create(KeySpec("alice"))
    _, bob = repo.create(KeySpec("bob"))
    await gw.refresh()
    mine = await _served(gw, alice, "local-a")
    master = await _served(gw, MASTER, "local-a")
    # no key, a wrong key: the gate refuses before anything is looked up
    assert (await _feedback(gw, None, {"request_id": mine, "score": 1})).status_code == 401
    assert (await _feedback(gw, "sk-wilton-" + "x" * 43, {"request_id": mine, "score": 1})).status_code == 401
    # another key's request (and the master key's) looks exactly like an unknown one
    for key, rid in ((bob, mine), (alice, master)):
        r = await _feedback(gw, key, {"request_id": rid, "score": 1})
        assert r.status_code == 404 and r.json()["error"]["code"] == "request_not_found"
    assert (await _feedback(gw, alice, {"request_id": mine, "score": 1})).status_code == 200
    assert (await _feedback(gw, MASTER, {"request_id": mine, "score": 0})).status_code == 200  # admin: any
    (label,) = read_labels(gw.store)
    assert label.request_id == mine and label.weak_score == 0.0 and label.key_id is not None


async def test_feedback_before_the_ledger_row_is_flushed(make_gateway: Any) -> None:
    gw = await make_gateway(ledger_flush_s=600.0)  # the writer would wait ten minutes on its own
    rid = await _served(gw, MASTER, "local-a")
    assert gw.store.query("SELECT COUNT(*) FROM ledger WHERE request_id = ?", (rid,)) == [(0,)]
    r = await _feedback(gw, MASTER, {"request_id": rid, "score": 1})
    assert r.status_code == 200, r.text
    assert [lb.request_id for lb in read_labels(gw.store)] == [rid]


async def test_a_request_that_failed_has_nothing_to_rate(make_gateway: Any, fake: Any) -> None:
    gw = await make_gateway()
    fake.script("local-a", status=500)
    r = await gw.chat(MASTER, model="local-a")
    assert r.status_code >= 500
    rid = r.headers["x-request-id"]
    r = await _feedback(gw, MASTER, {"request_id": rid, "score": 1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_rateable"


async def test_disabled_is_404(make_gateway: Any, tmp_path: Any) -> None:
    gw = await make_gateway()
    rid = await _served(gw, MASTER, "local-a")
    path = tmp_path / "off.toml"
    path.write_text((tmp_path / "wilton.toml").read_text() + "\n[learning]\nfeedback = false\n")
    off = load_config(path)
    assert off.learning.feedback is False
    gw.app._apis["/v1/feedback"] = Feedback.of(RouterService(off, store=gw.store, ledger=gw.ledger))
    r = await _feedback(gw, MASTER, {"request_id": rid, "score": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert count_labels(gw.store) == []


class _StuckLedger:
    """A writer whose store is down: flush never finishes."""

    def flush(self, timeout: float | None = None) -> bool:
        return False


async def test_ledger_behind_is_503_not_a_wrong_404(make_gateway: Any) -> None:
    gw = await make_gateway()
    endpoint = Feedback(gw.store, _StuckLedger())
    with pytest.raises(RequestError) as e:
        await endpoint.handle({"request_id": "not-yet-written", "score": 1}, None, 0.0, None)
    assert e.value.status == 503 and e.value.code == "ledger_behind"


def test_pick_row_prefers_the_callers_served_row() -> None:
    served = LedgerHit("local-a", True, "ok", "chat", "k1")
    refused = LedgerHit("", False, "error", "chat", "k1")
    other = LedgerHit("api-x", False, "ok", "chat", "k2")
    alice = Caller(key_id="k1", admin=False)
    assert pick_row([refused, other, served], alice) is served
    assert pick_row([other], alice) is None
    assert pick_row([refused], alice) is refused
    assert pick_row([other, served], Caller()) is other  # admin: the newest served row
    assert validate_feedback({"request_id": "r", "score": 1}).score == 1.0


class _SlowLedger:
    """A writer whose flush takes a while: counts how many flushes the endpoint asks for."""

    def __init__(self) -> None:
        self.calls = 0

    def flush(self, timeout: float | None = None) -> bool:
        import time

        self.calls += 1
        time.sleep(0.1)
        return True


async def test_a_burst_of_unknown_ids_shares_one_flush(make_gateway: Any) -> None:
    import asyncio

    gw = await make_gateway()
    ledger = _SlowLedger()
    endpoint = Feedback(gw.store, ledger)

    async def one(i: int) -> int:
        try:
            await endpoint.handle({"request_id": f"unknown-{i}", "score": 1}, None, 0.0, None)
        except RequestError as e:
            return e.status
        return 200

    assert await asyncio.gather(*(one(i) for i in range(20))) == [404] * 20
    assert ledger.calls <= 3  # one shared flush, and one more shared re-check: never one per request
