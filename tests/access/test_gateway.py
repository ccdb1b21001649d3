"""The gate in the real router app (in process, ASGI), over a fake upstream at the wire."""

from __future__ import annotations

from typing import Any

import pytest

from tests.access.conftest import MASTER
from wilton_core.access.keys import KeyRepo, KeySpec


def _api_requests(fake: Any) -> int:
    return int(fake.stats()["by_model"].get("api-x", 0))


async def test_no_keys_on_loopback_is_open(make_gateway: Any) -> None:
    gw = await make_gateway(master_key=None)
    r = await gw.chat(model="local-a")
    assert r.status_code == 200 and r.headers["x-wilton-model"] == "local-a"
    assert "input_cost_per_mtok" in (await gw.client.get("/v1/models")).text


async def test_master_key_required_and_accepted(make_gateway: Any) -> None:
    gw = await make_gateway()
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic abc"},
                    {"x-api-key": "sk-wilton-" + "x" * 43}):
        r = await gw.client.post("/v1/chat/completions", headers=headers,
                                 json={"messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 401, headers
        err = r.json()["error"]
        assert err["code"] == "invalid_api_key" and set(err) == {"message", "type", "param", "code"}
    assert (await gw.client.get("/v1/models")).status_code == 401
    assert (await gw.chat(MASTER, model="local-a")).status_code == 200
    r = await gw.client.post("/v1/chat/completions", headers={"x-api-key": MASTER},
                             json={"model": "api-x", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.headers["x-wilton-model"] == "api-x"
    rows = gw.rows()
    refused = [x for x in rows if x["http_status"] == 401]
    assert len(refused) == 4 and all(x["error_class"] == "invalid_api_key" for x in refused)
    # healthz stays open
    assert (await gw.client.get("/healthz")).status_code == 200


async def test_virtual_key_allow_list(make_gateway: Any, fake: Any) -> None:
    gw = await make_gateway()
    key, secret = KeyRepo(gw.store).create(KeySpec("team-a", models=("local-*",)))
    await gw.refresh()
    # auto: only allowed models, even when the split would pick an API model
    for _ in range(5):
        r = await gw.chat(secret, model="auto", content="prove the riemann hypothesis in detail " * 20)
        assert r.status_code == 200 and r.headers["x-wilton-model"].startswith("local-")
    r = await gw.chat(secret, model="api-x")
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    r = await gw.chat(secret, model="not-a-model")
    assert r.status_code == 403  # no existence oracle for restricted keys
    models = (await gw.client.get("/v1/models", headers={"authorization": f"Bearer {secret}"})).json()
    assert [m["id"] for m in models["data"]] == ["auto", "local-a", "local-b"]
    text = str(models)
    assert "cost" not in text and "WILTON_TEST_API_X_KEY" not in text and "wilton" not in models["data"][1]
    admin = (await gw.client.get("/v1/models", headers={"authorization": f"Bearer {MASTER}"})).json()
    assert any("input_cost_per_mtok" in m.get("wilton", {}) for m in admin["data"])
    rows = [x for x in gw.rows() if x["key_id"] == key.id]
    assert sum(1 for x in rows if x["http_status"] == 200) == 5
    assert sum(1 for x in rows if x["http_status"] == 403 and x["error_class"] == "model_not_allowed") == 2


async def test_fallback_detail_hidden_from_non_admin(make_gateway: Any) -> None:
    from wilton_core.access.caller import Caller
    from wilton_core.router.fallback import Attempt
    from wilton_core.router.render import routing_headers
    from wilton_core.router.results import RoutingFacts

    gw = await make_gateway()
    model = gw.service.runtimes["local-b"].cfg
    attempts = (Attempt("local-a", "unavailable", None, "internal detail /var/secret"),)
    facts = RoutingFacts("r1", model, "chat", 0.1, attempts, 0.0)

    def header(admin: bool) -> str:
        return dict(routing_headers(facts, Caller(key_id="key_1", admin=admin)))[b"x-wilton-fallbacks"].decode()

    assert header(True) == "local-a:unavailable"
    assert header(False) == "1"


async def test_revoked_and_expired_keys(make_gateway: Any) -> None:
    gw = await make_gateway(master_key=None)
    repo = KeyRepo(gw.store)
    key, secret = repo.create(KeySpec("short"))
    await gw.refresh()
    assert (await gw.chat(secret, model="local-a")).status_code == 200
    assert (await gw.chat(None, model="local-a")).status_code == 401  # keys exist: the gate is closed
    repo.revoke("short")
    await gw.refresh()
    r = await gw.chat(secret, model="local-a")
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert (await gw.chat(None, model="local-a")).status_code == 401  # still closed with no live key
    _, rotated = repo.create(KeySpec("rot"))
    _, new = repo.rotate("rot", grace_s=3600)
    await gw.refresh()
    assert (await gw.chat(rotated, model="local-a")).status_code == 200  # within the grace period
    assert (await gw.chat(new, model="local-a")).status_code == 200
    assert any(x["key_id"] == key.id and x["http_status"] == 401 for x in gw.rows())


async def test_budget_refuses_once_spent(make_gateway: Any) -> None:
    gw = await make_gateway()
    # 1000 $/Mtok in and out (conftest): one request costs a few cents
    key, secret = KeyRepo(gw.store).create(KeySpec("cheap", budget_usd=0.05, budget_period="day"))
    await gw.refresh()
    answered = 0
    for _ in range(50):
        r = await gw.chat(secret, model="api-x", content="spend some money please")
        if r.status_code == 429:
            break
        assert r.status_code == 200
        answered += 1
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == "insufficient_quota" and err["type"] == "insufficient_quota"
    rows = [x for x in gw.rows() if x["key_id"] == key.id]
    spent = sum(x["cost_usd"] for x in rows)
    per = max(x["cost_usd"] for x in rows)
    # this process counts its own spend before the store has it: no overshoot beyond one request
    assert 0.05 <= spent < 0.05 + per and answered >= 1
    assert rows[-1]["error_class"] == "insufficient_quota" and rows[-1]["http_status"] == 429
    await gw.refresh()  # the store's figure replaces the local one: still refused, not double counted
    assert (await gw.chat(secret, model="api-x")).status_code == 429
    assert gw.app.gate.spend.of(key.id) == pytest.approx(spent)


async def test_rpm_in_memory(make_gateway: Any) -> None:
    gw = await make_gateway()
    _, secret = KeyRepo(gw.store).create(KeySpec("slow", rpm=3, tpm=100000))
    await gw.refresh()
    ok = [await gw.chat(secret, model="local-a") for _ in range(3)]
    assert all(r.status_code == 200 for r in ok)
    assert ok[0].headers["x-ratelimit-limit-requests"] == "3"
    assert ok[0].headers["x-ratelimit-limit-tokens"] == "100000"
    r = await gw.chat(secret, model="local-a")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(r.headers["retry-after"]) >= 1 and r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-reset-requests"]
    assert (await gw.chat(MASTER, model="local-a")).status_code == 200  # the master key is not limited
    refused = [x for x in gw.rows() if x["error_class"] == "rate_limit_exceeded"]
    assert len(refused) == 1 and refused[0]["http_status"] == 429 and refused[0]["key_id"]


async def test_tpm_charged_from_usage(make_gateway: Any) -> None:
    gw = await make_gateway()
    _, secret = KeyRepo(gw.store).create(KeySpec("tok", tpm=10))
    await gw.refresh()
    r = await gw.chat(secret, model="local-a", content="a long enough prompt to use more than ten tokens " * 3)
    assert r.status_code == 200 and r.json()["usage"]["total_tokens"] > 10
    await gw.app.gate.charge_tokens()  # what the gate does every 50 ms
    r = await gw.chat(secret, model="local-a")
    assert r.status_code == 429 and r.json()["error"]["type"] == "tokens"
    assert r.headers["x-ratelimit-remaining-tokens"] == "0"


@pytest.mark.parametrize("how", ["key", "header"])
async def test_local_only_never_reaches_the_api(make_gateway: Any, fake: Any, how: str) -> None:
    gw = await make_gateway()
    if how == "key":
        _, secret = KeyRepo(gw.store).create(KeySpec("private", local_only=True))
        await gw.refresh()
        extra: dict[str, str] = {}
    else:
        secret, extra = MASTER, {"x-wilton-privacy": "local-only"}
    hard = "prove the riemann hypothesis with every step written out " * 30
    # threshold 0: the split sends every request to the API class first ...
    from wilton_core.store.base import ControlState

    gw.store.put_control_state(ControlState(phi_target=0.0, threshold=0.0))
    await gw.service.refresh_control()
    sent_to_api = [(await gw.chat(MASTER, model="auto", content=hard)).headers["x-wilton-local"] for _ in range(5)]
    assert "false" in sent_to_api  # (the selector draws at random; one of five is plenty)
    admin_rows = len(sent_to_api)
    before = _api_requests(fake)
    # ... but a local-only request stays local
    r = await gw.chat(secret, model="auto", content=hard, headers=extra)
    assert r.status_code == 200 and r.headers["x-wilton-local"] == "true"
    # a pinned API id: 403, nothing sent
    r = await gw.chat(secret, model="api-x", headers=extra)
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_local"
    r = await gw.chat(secret, model="api", headers=extra)
    assert r.status_code == 403
    # local models failing, then rate limited: fallback stays local, then 503 — never the API
    fake.script("local-a", status=500)
    fake.script("local-b", status=500)
    r = await gw.chat(secret, model="auto", content=hard, headers=extra)
    assert r.status_code == 503
    assert _api_requests(fake) == before
    fake.clear()  # (clears the counts too)
    fake.script("local-a", status=429, retry_after=30)
    fake.script("local-b", status=429, retry_after=30)
    # only rate limits stand in the way (past the wait budget): 429 with Retry-After, still local
    r = await gw.chat(secret, model="auto", headers=extra)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 29
    r = await gw.chat(secret, model="auto", stream=True, headers=extra)
    assert r.status_code == 429
    assert _api_requests(fake) == 0
    fake.clear()
    rows = gw.rows()[admin_rows:]  # after the admin's requests
    assert rows and all(x["local_only"] for x in rows) and not any(x["model_id"] == "api-x" and x["is_local"]
                                                                   for x in rows)
    assert any(x["error_class"] == "model_not_local" and x["http_status"] == 403 for x in rows)


async def test_privacy_header_typo_fails_closed(make_gateway: Any, fake: Any) -> None:
    gw = await make_gateway(master_key=None)
    before = _api_requests(fake)
    r = await gw.chat(None, model="api-x", headers={"x-wilton-privacy": "local-onyl"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_privacy_header"
    r = await gw.chat(None, model="api-x", headers={"x-wilton-privacy": "local-only"})
    assert r.status_code == 403
    assert _api_requests(fake) == before


async def test_admin_routes_need_the_master_key(make_gateway: Any) -> None:
    gw = await make_gateway()
    h = {"authorization": f"Bearer {MASTER}"}
    assert (await gw.client.get("/admin/keys")).status_code == 401
    r = await gw.client.post("/admin/keys", headers=h, json={"name": "api-made", "models": "local-*", "rpm": 5,
                                                             "budget_usd": 2, "budget_period": "week"})
    assert r.status_code == 201
    made = r.json()
    assert set(made) == {"id", "name", "key"}
    # a virtual key is not an admin, and is usable at once on this replica
    vk = {"authorization": f"Bearer {made['key']}"}
    assert (await gw.client.get("/admin/keys", headers=vk)).status_code == 403
    assert (await gw.chat(made["key"], model="local-a")).status_code == 200
    listed = (await gw.client.get("/admin/keys", headers=h)).json()["data"]
    assert [k["name"] for k in listed] == ["api-made"] and listed[0]["budget_usd"] == 2.0
    assert "key_hash" not in str(listed) and made["key"] not in str(listed)
    assert (await gw.client.get("/admin/keys/api-made", headers=h)).json()["models"] == ["local-*"]
    rotated = (await gw.client.post("/admin/keys/api-made/rotate", headers=h, json={})).json()
    assert rotated["id"] == made["id"] and (await gw.chat(made["key"], model="local-a")).status_code == 401
    assert (await gw.client.post(f"/admin/keys/{made['id']}/revoke", headers=h)).json()["state"] == "revoked"
    assert (await gw.chat(rotated["key"], model="local-a")).status_code == 401
    for body, code in (({"name": "x", "rpm": "fast"}, 400), ({"name": "x", "evil": 1}, 400), ({}, 400),
                       ({"name": "x", "budget_period": "year"}, 400), ({"name": "x", "local_only": 1}, 400)):
        r = await gw.client.post("/admin/keys", headers=h, json=body)
        assert r.status_code == code and set(r.json()["error"]) == {"message", "type", "param", "code"}, body
    r = await gw.client.post("/admin/keys", headers=h, content=b"{not json")
    assert r.status_code == 400
    assert (await gw.client.get("/admin/keys/nope", headers=h)).status_code == 404
    assert (await gw.client.delete("/admin/keys", headers=h)).status_code == 405


async def test_admin_routes_off_without_master_key(make_gateway: Any) -> None:
    gw = await make_gateway(master_key=None)
    assert (await gw.client.get("/admin/keys")).status_code == 403


async def test_a_flood_of_bad_keys_cannot_fill_the_ledger(make_gateway: Any) -> None:
    gw = await make_gateway()
    gw.app.gate.anonymous_rows_per_s = 5
    codes = [(await gw.chat("sk-wilton-" + "z" * 43, model="local-a")).status_code for _ in range(30)]
    assert codes == [401] * 30
    rows = [x for x in gw.rows() if x["error_class"] == "invalid_api_key"]
    # one or two wall-clock seconds may pass during the loop: at most 5 rows each
    assert 5 <= len(rows) <= 15 and gw.app.gate.anonymous_dropped == 30 - len(rows)


async def test_refresh_failure_keeps_the_last_table(make_gateway: Any) -> None:
    gw = await make_gateway()
    _, secret = KeyRepo(gw.store).create(KeySpec("kept"))
    await gw.refresh()

    class Broken:
        def all(self) -> list[Any]:
            raise RuntimeError("store down")

    gw.app.gate.repo = Broken()
    await gw.app.gate.refresh()  # logged, not raised
    assert (await gw.chat(secret, model="local-a")).status_code == 200


async def test_rate_limiter_fails_open_without_redis() -> None:
    from wilton_core.access.ratelimit import RateLimiter

    limiter = RateLimiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    limiter.start()
    checks = await limiter.admit("key_x", rpm=1, tpm=10)
    assert checks and all(c.ok for c in checks)
    limiter.close()


async def test_outage_detail_hidden_from_non_admin(make_gateway: Any, fake: Any) -> None:
    """A 503 tells a non-admin key that nothing is available, not which models failed and how."""
    gw = await make_gateway()
    _key, secret = KeyRepo(gw.store).create(KeySpec("team-o", models=("local-*",)))
    await gw.refresh()
    fake.script("local-a", status=500)
    fake.script("local-b", status=500)
    try:
        r = await gw.chat(secret, model="auto")
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert err["code"] == "no_healthy_model" and "tried" not in err and "local-" not in err["message"]
        r = await gw.chat(MASTER, model="local")
        assert r.status_code == 503 and "tried" in r.json()["error"]  # the operator sees the detail
    finally:
        fake.clear()
