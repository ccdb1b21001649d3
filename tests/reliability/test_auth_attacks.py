"""Attacks on the coherence daemon's JWT API. Each asserts the status AND that nothing changed:
the target, the audit log, users, refresh-token rows and signing keys (see `_coherence.snapshot`).

tests/coherence covers the happy paths and most rejections; here every attack is its own test
with the no-state-change check, plus the same attacks against the real `wilton-coherence` process.
"""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wilton_core.coherence.app import create_app
from wilton_core.coherence.tokens import make_claims
from wilton_core.testing.procs import ManagedProcess, free_port

from ._coherence import PASSWORD, make_service, snapshot

T0 = 1_700_000_000.0
ISS, AUD = "wilton-coherence", "wilton-coherence-api"


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path, clock):
    s, store = make_service(tmp_path, clock)
    yield s
    s.stop()
    store.close()


@pytest.fixture
async def api(svc):
    transport = httpx.ASGITransport(app=create_app(svc), client=("10.9.8.7", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://coherence") as c:
        yield c


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def forge(svc, clock, *, header: dict | None = None, key: bytes | None = None, alg: str = "HS256", **over) -> str:
    k = svc.auth.active_key()
    claims = make_claims(sub="admin", scopes=["phi:read", "phi:write"], typ="access", now=clock(), ttl_s=900,
                         issuer=ISS, audience=AUD, jti="forged")
    claims.update(over)
    return jwt.encode(claims, k.secret if key is None else key, algorithm=alg, headers={"kid": k.kid} if header is None else header)


def _rs256(svc, clock) -> str:
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    k = svc.auth.active_key()
    return jwt.encode(make_claims(sub="admin", scopes=["phi:write"], typ="access", now=clock(), ttl_s=900,
                                  issuer=ISS, audience=AUD, jti="rs"), priv, algorithm="RS256",
                      headers={"kid": k.kid})


def _hs_with_public_key(svc, clock) -> str:
    """Classic confusion: HS256 signed with an RSA public key the attacker knows."""
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    k = svc.auth.active_key()
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": k.kid})
    body = _b64(make_claims(sub="admin", scopes=["phi:write"], typ="access", now=clock(), ttl_s=900,
                            issuer=ISS, audience=AUD, jti="cf"))
    import hashlib
    import hmac

    sig = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def _alg_none(svc, clock) -> str:
    k = svc.auth.active_key()
    claims = make_claims(sub="admin", scopes=["phi:write"], typ="access", now=clock(), ttl_s=900,
                         issuer=ISS, audience=AUD, jti="none")
    return f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': k.kid})}.{_b64(claims)}."


def _tampered(svc, clock) -> str:
    """A genuine read-only token whose payload is rewritten to claim phi:write."""
    pair = svc.auth.login("admin", PASSWORD, "x", "phi:read")
    head, body, sig = pair.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["scope"] = "phi:read phi:write"
    return f"{head}.{_b64(claims)}.{sig}"


ATTACKS = {
    "alg-none": _alg_none,
    "alg-none-pyjwt": lambda s, c: jwt.encode({"sub": "admin", "scope": "phi:write"}, None, algorithm="none",
                                              headers={"kid": s.auth.active_key().kid}),
    "rs256-instead-of-hs256": _rs256,
    "hs256-signed-with-rsa-public-key": _hs_with_public_key,
    "expired": lambda s, c: forge(s, c, exp=int(c() - 1), iat=int(c() - 901), nbf=int(c() - 901)),
    "not-yet-valid": lambda s, c: forge(s, c, nbf=int(c() + 600), iat=int(c() + 600), exp=int(c() + 1500)),
    "wrong-issuer": lambda s, c: forge(s, c, iss="evil-issuer"),
    "wrong-audience": lambda s, c: forge(s, c, aud="another-api"),
    "refresh-token-as-access": lambda s, c: s.auth.login("admin", PASSWORD, "x").refresh_token,
    "tampered-payload": _tampered,
    "wrong-secret": lambda s, c: forge(s, c, key=b"k" * 32),
    "unknown-kid": lambda s, c: forge(s, c, header={"kid": "0123456789abcdef"}),
    "no-kid": lambda s, c: forge(s, c, header={}),
    "unknown-user": lambda s, c: forge(s, c, sub="mallory"),
    "missing-exp": lambda s, c: jwt.encode({k: v for k, v in make_claims(
        sub="admin", scopes=["phi:write"], typ="access", now=c(), ttl_s=900, issuer=ISS, audience=AUD,
        jti="e").items() if k != "exp"}, s.auth.active_key().secret, algorithm="HS256",
        headers={"kid": s.auth.active_key().kid}),
    "oversized": lambda s, c: "a" * 5000 + "." + "b" * 100_000 + ".c",
    "garbage": lambda s, c: "not-a-jwt",
    "three-empty-parts": lambda s, c: "..",
    "binary-junk": lambda s, c: "\u00ff\u00fe.\u0000.x",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_forged_or_invalid_token_is_401_and_changes_nothing(api, svc, clock, attack) -> None:
    before = snapshot(svc)
    token = ATTACKS[attack](svc, clock)
    after_forge = snapshot(svc)  # some forgers log in (a genuine token to tamper with)
    for method, path, kw in (("GET", "/phi", {}), ("PUT", "/phi/target", {"json": {"phi_target": 0.05}}),
                             ("POST", "/rebalance", {})):
        try:
            r = await api.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        except (UnicodeEncodeError, httpx.LocalProtocolError):
            continue  # the client refuses to send it at all: nothing reached the daemon
        assert r.status_code == 401, (attack, method, r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert token[:200] not in r.text
    after = snapshot(svc)
    assert after["target"] == before["target"] == 0.75
    assert after["audit"] == before["audit"] == []
    assert after == after_forge


async def test_phi_read_token_cannot_write(api, svc) -> None:
    before = snapshot(svc)
    ro = svc.auth.login("admin", PASSWORD, "x", "phi:read")
    mid = snapshot(svc)
    h = {"Authorization": f"Bearer {ro.access_token}"}
    assert (await api.put("/phi/target", json={"phi_target": 0.1}, headers=h)).status_code == 403
    assert (await api.post("/rebalance", headers=h)).status_code == 403
    assert (await api.get("/phi", headers=h)).status_code == 200
    # refreshing never widens the grant
    r = await api.post("/auth/refresh", json={"refresh_token": ro.refresh_token})
    assert r.status_code == 200 and r.json()["scope"] == "phi:read"
    h2 = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await api.put("/phi/target", json={"phi_target": 0.1}, headers=h2)).status_code == 403
    after = snapshot(svc)
    assert after["target"] == before["target"] and after["audit"] == before["audit"] == []
    assert mid["users"] == after["users"]


async def test_refresh_reuse_revokes_the_whole_family(api, svc) -> None:
    first = svc.auth.login("admin", PASSWORD, "x")
    r = await api.post("/auth/refresh", json={"refresh_token": first.refresh_token})
    second = r.json()
    r = await api.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    third = r.json()
    before = snapshot(svc)
    # the stolen first token is replayed
    assert (await api.post("/auth/refresh", json={"refresh_token": first.refresh_token})).status_code == 401
    fam = svc.store.query("SELECT revoked FROM coherence_refresh_tokens")
    assert fam and all(row[0] == 1 for row in fam)  # every token of the family, including the newest
    for t in (first.access_token, second["access_token"], third["access_token"]):
        h = {"Authorization": f"Bearer {t}"}
        assert (await api.get("/phi", headers=h)).status_code == 401
        assert (await api.put("/phi/target", json={"phi_target": 0.2}, headers=h)).status_code == 401
    assert (await api.post("/auth/refresh", json={"refresh_token": third["refresh_token"]})).status_code == 401
    after = snapshot(svc)
    assert after["target"] == before["target"] and after["audit"] == [] and after["users"] == before["users"]


async def test_brute_force_login_is_throttled_and_the_right_password_is_refused_while_locked(api, svc, clock) -> None:
    before = snapshot(svc)
    codes = []
    for i in range(12):
        r = await api.post("/auth/token", data={"username": "admin", "password": f"guess-{i}"})
        codes.append(r.status_code)
        assert PASSWORD not in r.text and f"guess-{i}" not in r.text
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    r = await api.post("/auth/token", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert snapshot(svc)["refresh"] == before["refresh"]  # no token was issued
    # another client is not locked out by the attacker
    transport = httpx.ASGITransport(app=create_app(svc), client=("10.1.1.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://c") as other:
        assert (await other.post("/auth/token", data={"username": "admin", "password": PASSWORD})).status_code == 200
    assert snapshot(svc)["target"] == 0.75 and svc.audit_log() == []


async def test_garbage_refresh_tokens(api, svc) -> None:
    before = snapshot(svc)
    for body in ({"refresh_token": "x" * 10_000}, {"refresh_token": ""}, {"refresh_token": 12},
                 {"refresh_token": "a.b.c"}, {}, [1, 2], "null"):
        r = await api.post("/auth/refresh", json=body)
        assert r.status_code in (401, 422), (body, r.status_code)
        assert "x" * 100 not in r.text
    assert snapshot(svc) == before


@pytest.mark.e2e
def test_attacks_against_the_real_daemon_process(tmp_path) -> None:
    port = free_port()
    env = {"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'wilton.db'}", "WILTON_DATA_DIR": str(tmp_path / "data"),
           "WILTON_ADMIN_PASSWORD": PASSWORD}
    daemon = ManagedProcess.python_module("wilton_core.coherence.cli", "--port", str(port), "--interval", "60",
                                          env=env, log=tmp_path / "coherence.log")
    daemon.start(f"http://127.0.0.1:{port}/healthz", timeout=60)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            good = c.post("/auth/token", data={"username": "admin", "password": PASSWORD}).json()
            hdr = {"Authorization": f"Bearer {good['access_token']}"}
            assert c.get("/phi", headers=hdr).json()["phi_target"] == 0.75
            head, body, sig = good["access_token"].split(".")
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            kid = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]
            bad = [
                f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}.",
                f"{head}.{_b64({**claims, 'exp': int(time.time()) - 10})}.{sig}",
                f"{head}.{body}.{sig[:-6]}AAAAAA",
                jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": kid}),
                jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": "feedfacefeedface"}),
                good["refresh_token"],
                "x" * 50_000,
                "garbage",
            ]
            for tok in bad:
                r = c.put("/phi/target", json={"phi_target": 0.1}, headers={"Authorization": f"Bearer {tok}"})
                assert r.status_code == 401, (tok[:60], r.status_code)
            # brute force from one client is throttled
            codes = [c.post("/auth/token", data={"username": "admin", "password": f"nope{i}"}).status_code
                     for i in range(7)]
            assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
            # nothing moved; and the genuine token still writes, so the 401s were not an accident
            assert c.get("/phi", headers=hdr).json()["phi_target"] == 0.75
            ro = c.post("/auth/token", data={"username": "admin", "password": PASSWORD, "scope": "phi:read"})
            assert ro.status_code == 429  # same client, still locked: even the right password waits
            # a spoofed X-Forwarded-For does not make the attacker a new client (a fresh throttle key)
            spoof = [c.post("/auth/token", data={"username": "admin", "password": f"again{i}"},
                            headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(3)]
            assert spoof == [429, 429, 429]
        log = daemon.log_text()
    finally:
        daemon.stop()
    from wilton_core.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'wilton.db'}")
    try:
        assert store.query("SELECT COUNT(*) FROM phi_audit_log")[0][0] == 0
        assert store.get_control_state().phi_target == 0.75
    finally:
        store.close()
    assert PASSWORD not in log and good["access_token"] not in log


def test_concurrent_guessing_against_the_real_daemon(tmp_path) -> None:
    """Issue 14: waves of 32 concurrent wrong passwords from one address against the real daemon
    and its real argon2: at most 5 guesses are ever checked, the excess is refused at once (503
    busy, then 429 locked), the API keeps answering, and then even the right password waits."""
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    env = {"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'wilton.db'}", "WILTON_DATA_DIR": str(tmp_path / "data"),
           "WILTON_ADMIN_PASSWORD": PASSWORD}
    daemon = ManagedProcess.python_module("wilton_core.coherence.cli", "--port", str(port), "--interval", "60",
                                          env=env, log=tmp_path / "coherence.log")
    daemon.start(f"http://127.0.0.1:{port}/healthz", timeout=60)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            token = c.post("/auth/token", data={"username": "admin", "password": PASSWORD},
                           headers={"X-Forwarded-For": "ignored"}).json()["access_token"]

        def guess(pw: str) -> int:
            with httpx.Client(base_url=base, timeout=60) as c:
                return c.post("/auth/token", data={"username": "admin", "password": pw}).status_code

        codes: list[int] = []
        with ThreadPoolExecutor(32) as pool:
            for wave in range(10):  # bounded: waves of 32 until the pair is locked
                flood = pool.map(guess, [f"wrong-{wave}-{i}" for i in range(32)])
                with httpx.Client(base_url=base, timeout=60) as c:
                    phi = c.get("/phi", headers={"Authorization": f"Bearer {token}"})
                codes += list(flood)
                assert phi.status_code == 200  # the API answers during the flood
                if 429 in codes:
                    break
        assert 429 in codes and codes.count(401) <= 5 and set(codes) <= {401, 429, 503}, codes
        with httpx.Client(base_url=base, timeout=60) as c:  # the pair is locked: right password or not
            assert c.post("/auth/token", data={"username": "admin", "password": PASSWORD}).status_code == 429
    finally:
        daemon.stop()
