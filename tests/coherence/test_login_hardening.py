"""Login hardening (issue 14): an atomic failure counter, a per-user limit independent of the
client address, and a cap on concurrent password hashing so a login flood cannot starve the API."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from coh_helpers import PASSWORD, FakeClock, bearer, cheap_hasher, login

from wilton_core.coherence.app import create_app
from wilton_core.coherence.auth import AuthConfig, InvalidCredentials, LoginThrottled
from wilton_core.coherence.service import CoherenceOptions, CoherenceService
from wilton_core.store import open_store


class CountingHasher(PasswordHasher):
    """argon2 with a counter of verifications and of how many ran at once (and a delay that
    widens the race window the way a real 50 ms argon2 does)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(time_cost=1, memory_cost=64, parallelism=1)
        self.delay_s = delay_s
        self.verified = 0
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verified += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


def _service(url: str, tmp: Path, hasher: PasswordHasher, clock: FakeClock | None = None,
             auth: AuthConfig | None = None) -> CoherenceService:
    store = open_store(url)
    opts = CoherenceOptions(password=PASSWORD, data_dir=tmp / "data", **({"auth": auth} if auth else {}))
    svc = CoherenceService(opts, store=store, hasher=hasher, announce=lambda s: None,
                           **({"clock": clock} if clock else {}))
    svc.start(scheduler=False)
    return svc


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wilton.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_concurrent_wrong_passwords_from_one_address_check_at_most_the_limit(store_url: str,
                                                                            tmp_path: Path) -> None:
    hasher = CountingHasher(delay_s=0.02)
    svc = _service(store_url, tmp_path, hasher)
    hasher.verified = 0
    guesses = [f"guess-{i}" for i in range(199)] + [PASSWORD]

    def attempt(pw: str) -> str:
        try:
            svc.auth.login("admin", pw, "10.0.0.66")
            return "token"
        except InvalidCredentials:
            return "401"
        except LoginThrottled:
            return "429"

    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(attempt, guesses))
    finally:
        svc.stop()
        svc.store.close()
    # 5 failures lock the (user, address) pair: no more than 5 guesses may be checked, whatever
    # the concurrency (it was 160 of 200 with a read-then-write counter)
    assert hasher.verified <= svc.auth.config.max_failures, hasher.verified
    assert "token" not in results and results.count("429") >= 195


async def test_per_user_limit_across_addresses(tmp_path: Path) -> None:
    clock = FakeClock()
    svc = _service(f"sqlite:///{tmp_path / 'w.db'}", tmp_path, cheap_hasher(), clock)
    app = create_app(svc)
    limit = svc.auth.config.max_user_failures
    codes = []
    try:
        for i in range(20):  # 20 addresses x 5 guesses would be 100 guesses with a per-pair lock only
            transport = httpx.ASGITransport(app=app, client=(f"127.0.0.{i + 2}", 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
                for _ in range(5):
                    codes.append((await login(c, password="wrong")).status_code)
        assert codes.count(401) == limit, codes
        assert codes.count(429) == 100 - limit
        # even the right password from a fresh address waits out the user's lock ...
        transport = httpx.ASGITransport(app=app, client=("127.0.1.1", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            r = await login(c)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            clock.advance(svc.auth.config.lockout_max_s + 1)
            assert (await login(c)).status_code == 200  # ... and then gets in
    finally:
        svc.stop()
        svc.store.close()


async def test_login_flood_is_capped_and_the_api_keeps_answering(tmp_path: Path) -> None:
    hasher = CountingHasher(delay_s=0.05)
    auth = AuthConfig(max_concurrent_hashes=2, max_failures=1000, max_user_failures=1000)
    svc = _service(f"sqlite:///{tmp_path / 'w.db'}", tmp_path, hasher, auth=auth)
    app = create_app(svc)
    transport = httpx.ASGITransport(app=app, client=("10.1.1.1", 4000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            token = (await login(c)).json()["access_token"]
            hasher.peak = 0
            flood = [asyncio.create_task(login(c, password=f"wrong-{i}")) for i in range(48)]
            phi = await c.get("/phi", headers=bearer(token))
            codes = [r.status_code for r in await asyncio.gather(*flood)]
        assert phi.status_code == 200
        assert hasher.peak <= 2, hasher.peak
        busy = [r for r in codes if r == 503]
        assert busy and set(codes) <= {401, 503}
    finally:
        svc.stop()
        svc.store.close()


async def test_busy_answer_has_retry_after(tmp_path: Path) -> None:
    hasher = CountingHasher(delay_s=0.1)
    svc = _service(f"sqlite:///{tmp_path / 'w.db'}", tmp_path, hasher,
                   auth=AuthConfig(max_concurrent_hashes=1))
    transport = httpx.ASGITransport(app=create_app(svc), client=("10.1.1.2", 4000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            rs = await asyncio.gather(*(login(c, password="x") for _ in range(4)))
        busy = [r for r in rs if r.status_code == 503]
        assert busy and all(r.headers["retry-after"] == "1" for r in busy)
        assert busy[0].json()["detail"].startswith("too many logins in progress")
    finally:
        svc.stop()
        svc.store.close()
