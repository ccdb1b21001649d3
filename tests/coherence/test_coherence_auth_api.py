"""Attacks against the coherence API; every rejected attempt leaves the control state as it was."""

import json

import jwt
import pytest
from coh_helpers import PASSWORD, bearer, login
from cryptography.hazmat.primitives.asymmetric import rsa

from wilton_core.coherence.tokens import make_claims

pytestmark = pytest.mark.asyncio


async def _target(api, token) -> float:
    r = await api.get("/phi", headers=bearer(token))
    assert r.status_code == 200
    return r.json()["phi_target"]


async def _tokens(api, **kw) -> dict:
    r = await login(api, **kw)
    assert r.status_code == 200, r.text
    return r.json()


async def test_login_and_read(api) -> None:
    t = await _tokens(api)
    assert t["token_type"] == "bearer" and t["expires_in"] == 900
    assert set(t["scope"].split()) == {"phi:read", "phi:write"}
    assert await _target(api, t["access_token"]) == 0.75


async def test_healthz_and_docs_need_no_auth(api) -> None:
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/openapi.json")).status_code == 200
    assert (await api.get("/docs")).status_code == 200
    assert (await api.get("/phi")).status_code == 401


async def test_wrong_password_then_throttle(api, service, clock) -> None:
    for _ in range(5):
        r = await login(api, password="wrong")
        assert r.status_code == 401
        assert PASSWORD not in r.text
    r = await login(api)  # even the right password is refused while locked
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 30
    clock.advance(31)
    assert (await login(api, password="still wrong")).status_code == 401
    r = await login(api)
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 60  # doubled
    clock.advance(61)
    assert (await login(api)).status_code == 200
    assert (await login(api, password="wrong")).status_code == 401  # success reset the count


async def test_unknown_user_is_a_plain_401_and_throttled_too(api) -> None:
    for _ in range(5):
        assert (await login(api, username="nobody", password="x")).status_code == 401
    assert (await login(api, username="nobody", password="x")).status_code == 429
    assert (await login(api)).status_code == 200  # admin from the same client is not locked


async def test_expired_and_not_yet_valid(api, clock) -> None:
    t = await _tokens(api)
    clock.advance(15 * 60)
    assert (await api.get("/phi", headers=bearer(t["access_token"]))).status_code == 401
    clock.advance(-2 * 15 * 60)
    assert (await api.get("/phi", headers=bearer(t["access_token"]))).status_code == 401


async def test_forged_tokens_rejected(api, service, clock) -> None:
    good = (await _tokens(api))["access_token"]
    key = service.auth.active_key()

    def signed(**over) -> str:
        c = make_claims(sub="admin", scopes=["phi:read", "phi:write"], typ="access", now=clock(),
                        ttl_s=900, issuer="wilton-coherence", audience="wilton-coherence-api", jti="x")
        c.update(over)
        return jwt.encode(c, key.secret, algorithm="HS256", headers={"kid": key.kid})

    assert (await api.get("/phi", headers=bearer(signed()))).status_code == 200  # the forge kit works
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs = jwt.encode(make_claims(sub="admin", scopes=["phi:write"], typ="access", now=clock(), ttl_s=900,
                                issuer="wilton-coherence", audience="wilton-coherence-api", jti="y"),
                    priv, algorithm="RS256", headers={"kid": key.kid})
    head, body, sig = good.split(".")
    bad = [
        signed(iss="someone-else"),
        signed(aud="another-api"),
        signed(typ="refresh"),
        jwt.encode({"sub": "admin"}, None, algorithm="none", headers={"kid": key.kid}),
        rs,
        jwt.encode(jwt.decode(good, options={"verify_signature": False}), b"k" * 32, algorithm="HS256",
                   headers={"kid": "no-such-kid"}),
        f"{head}.{body}.{sig[:-4]}AAAA",
        f"{head}.{body[:-2]}x.{sig}",
        "garbage",
        "a.b.c",
        "x" * 100_000,
    ]
    for tok in bad:
        for method, path, kw in (("GET", "/phi", {}), ("PUT", "/phi/target", {"json": {"phi_target": 0.1}})):
            r = await api.request(method, path, headers=bearer(tok), **kw)
            assert r.status_code == 401, (tok[:40], r.status_code)
            assert tok not in r.text
    assert await _target(api, good) == 0.75
    assert service.audit_log() == []


async def test_scope_escalation_refused(api, service) -> None:
    ro = await _tokens(api, scope="phi:read")
    assert ro["scope"] == "phi:read"
    r = await api.put("/phi/target", json={"phi_target": 0.2}, headers=bearer(ro["access_token"]))
    assert r.status_code == 403
    assert (await api.post("/rebalance", headers=bearer(ro["access_token"]))).status_code == 403
    refreshed = (await api.post("/auth/refresh", json={"refresh_token": ro["refresh_token"]})).json()
    assert refreshed["scope"] == "phi:read"  # refresh never widens the grant
    r = await api.put("/phi/target", json={"phi_target": 0.2}, headers=bearer(refreshed["access_token"]))
    assert r.status_code == 403
    assert (await login(api, scope="phi:admin")).status_code == 400
    assert await _target(api, ro["access_token"]) == 0.75 and service.audit_log() == []


async def test_refresh_rotates_and_reuse_revokes_family(api) -> None:
    first = await _tokens(api)
    r = await api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await api.get("/phi", headers=bearer(second["access_token"]))).status_code == 200
    # The old refresh token is replayed (stolen): the whole family dies.
    r = await api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401
    assert (await api.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})).status_code == 401
    assert (await api.get("/phi", headers=bearer(second["access_token"]))).status_code == 401
    assert (await api.get("/phi", headers=bearer(first["access_token"]))).status_code == 401
    # Another login (a new family) is unaffected.
    assert (await api.get("/phi", headers=bearer((await _tokens(api))["access_token"]))).status_code == 200


async def test_access_token_is_not_a_refresh_token(api) -> None:
    t = await _tokens(api)
    assert (await api.post("/auth/refresh", json={"refresh_token": t["access_token"]})).status_code == 401
    assert (await api.get("/phi", headers=bearer(t["refresh_token"]))).status_code == 401
    assert (await api.post("/auth/refresh", json={"refresh_token": "x" * 10_000})).status_code == 422


async def test_key_rotation_with_kid(api, service, clock) -> None:
    old = await _tokens(api)
    old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
    clock.advance(1)
    new_key = service.auth.rotate_key()
    new = await _tokens(api)
    assert jwt.get_unverified_header(new["access_token"])["kid"] == new_key.kid != old_kid
    assert (await api.get("/phi", headers=bearer(old["access_token"]))).status_code == 200
    service.auth.retire_key(old_kid)
    assert (await api.get("/phi", headers=bearer(old["access_token"]))).status_code == 401
    assert (await api.get("/phi", headers=bearer(new["access_token"]))).status_code == 200


@pytest.mark.parametrize("body", [
    b'{"phi_target": NaN}', b'{"phi_target": Infinity}', b'{"phi_target": 1e999}', b'{"phi_target": -0.01}',
    b'{"phi_target": 1.5}', b'{"phi_target": "0.5"}', b'{"phi_target": null}', b'{}', b'not json',
    b'{"phi_target": 0.5, "extra": 1}', b'{"phi_target": true}',
])
async def test_put_target_rejects_bad_values(api, service, body) -> None:
    tok = (await _tokens(api))["access_token"]
    r = await api.put("/phi/target", content=body,
                      headers={**bearer(tok), "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert service.state().phi_target == 0.75 and service.audit_log() == []


async def test_put_then_get_reflects_and_audits(api, service, clock) -> None:
    tok = (await _tokens(api))["access_token"]
    r = await api.put("/phi/target", json={"phi_target": 0.6}, headers=bearer(tok))
    assert r.status_code == 200 and r.json()["phi_target"] == 0.6
    got = (await api.get("/phi", headers=bearer(tok))).json()
    assert got["phi_target"] == 0.6 and got["steps"] >= 1 and got["last_step_at"] == clock()
    (row,) = service.audit_log()
    assert row == {"ts": clock(), "actor": "admin", "action": "set_target", "old_value": 0.75,
                   "new_value": 0.6, "client": "10.0.0.7"}
    r = await api.post("/rebalance", headers=bearer(tok))
    assert r.status_code == 200 and r.json()["steps"] == got["steps"] + 1
    assert json.dumps(r.json()).find(tok) == -1
