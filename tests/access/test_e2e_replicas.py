"""End to end: two real router processes on one store (PostgreSQL) and one Redis.

- a budget holds across both, with the documented overshoot bound;
- RPM is one limit across both through Redis (and two limits without it);
- a revocation reaches the second replica within the refresh interval;
- the router refuses to serve a non-loopback address without a master key.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.access.conftest import MASTER, write_config
from wilton_core.access.keys import KeyRepo, KeySpec
from wilton_core.store import open_store
from wilton_core.store.base import ControlState
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REDIS = "redis://127.0.0.1:6379/0"
REFRESH_S = 0.3


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Replicas:
    def __init__(self, urls: list[str], procs: list[ManagedProcess], store_url: str) -> None:
        self.urls, self.procs, self.store_url = urls, procs, store_url

    def chat(self, i: int, key: str, model: str = "api-x", content: str = "hello there") -> httpx.Response:
        return httpx.post(self.urls[i] + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                          json={"model": model, "messages": [{"role": "user", "content": content}]}, timeout=30)


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    fake = FakeUpstream(models=["local-a", "local-b", "api-x"]).start()
    store = open_store(pg_url)
    store.migrate()
    store.put_control_state(ControlState(phi_target=0.75, threshold=1.0, updated_at=time.time()))
    store.close()
    cfg = write_config(tmp_path / "wilton.toml", fake.url)
    procs: list[ManagedProcess] = []

    def start(redis: bool) -> Replicas:
        urls = []
        for i in range(2):
            port = free_port()
            env = {"WILTON_STORE_URL": pg_url, "WILTON_MASTER_KEY": MASTER, "WILTON_LEDGER_FLUSH_S": "0.05",
                   "WILTON_KEY_REFRESH_S": str(REFRESH_S), "WILTON_TEST_API_X_KEY": "upstream-secret",
                   "WILTON_REPLICA_ID": f"r{i}"}
            if redis:
                env["WILTON_REDIS_URL"] = REDIS
            p = ManagedProcess.python_module("wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                                             env=env, log=tmp_path / f"router{i}.log")
            procs.append(p.start(f"http://127.0.0.1:{port}/readyz", timeout=60))
            urls.append(f"http://127.0.0.1:{port}")
        return Replicas(urls, procs, pg_url)

    yield start
    for p in procs:
        p.stop()
    fake.stop()


def _create(store_url: str, spec: KeySpec) -> tuple[str, str]:
    store = open_store(store_url)
    try:
        key, secret = KeyRepo(store).create(spec)
    finally:
        store.close()
    return key.id, secret


def _spent(store_url: str, key_id: str) -> tuple[float, float, int]:
    store = open_store(store_url)
    try:
        total, peak, n = store.query_one(
            "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(MAX(cost_usd), 0), COUNT(*) FROM ledger"
            " WHERE key_id = ? AND status = 'ok'", (key_id,))
    finally:
        store.close()
    return float(total), float(peak), int(n)


@pytest.mark.postgres
def test_budget_across_two_replicas(replicas: Any) -> None:
    r = replicas(redis=False)
    budget = 0.6
    key_id, secret = _create(r.store_url, KeySpec("shared-budget", budget_usd=budget, budget_period="day"))
    time.sleep(REFRESH_S * 3)  # both replicas have the key
    per_wave = 2  # concurrent requests per replica per wave: 4 in flight at once
    refused = 0
    with ThreadPoolExecutor(per_wave * 2) as pool:
        for _ in range(40):  # bounded: the budget is a few waves
            jobs = [pool.submit(r.chat, i % 2, secret, "api-x", "please spend money on this") for i in
                    range(per_wave * 2)]
            codes = [j.result().status_code for j in jobs]
            assert set(codes) <= {200, 429}, codes
            if all(c == 429 for c in codes):
                refused += 1
                if refused == 2:
                    break
            # let both replicas' ledgers flush and their refresh read the spend (documented bound)
            time.sleep(REFRESH_S * 3 + 0.2)
    assert refused == 2, "the budget was never enforced"
    spent, per_request, n = _spent(r.store_url, key_id)
    assert spent >= budget and n > per_wave * 2
    # overshoot bound: the requests in flight when the budget ran out (one wave on both replicas)
    assert spent <= budget + per_wave * 2 * per_request, (spent, per_request)
    for i in range(2):
        resp = r.chat(i, secret)
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "insufficient_quota"


@pytest.mark.postgres
def test_revocation_reaches_the_other_replica(replicas: Any) -> None:
    r = replicas(redis=False)
    key_id, secret = _create(r.store_url, KeySpec("revoke-me"))
    deadline = time.monotonic() + 10
    while r.chat(1, secret, "local-a").status_code != 200:
        assert time.monotonic() < deadline, "replica 1 never saw the new key"
        time.sleep(0.05)
    store = open_store(r.store_url)
    KeyRepo(store).revoke(key_id)  # through replica 0's store, as the CLI would
    store.close()
    revoked_at = time.monotonic()
    for i in (1, 0):
        while r.chat(i, secret, "local-a").status_code != 401:
            # stated bound: WILTON_KEY_REFRESH_S plus one store read; a generous margin for a loaded box
            assert time.monotonic() - revoked_at < REFRESH_S + 5.0, f"revocation did not reach replica {i}"
            time.sleep(0.02)


@pytest.mark.postgres
@pytest.mark.parametrize("shared", [True, False], ids=["redis", "memory"])
def test_rpm_across_two_replicas(replicas: Any, shared: bool) -> None:
    if shared and not _redis_up():
        pytest.skip("Redis on 127.0.0.1:6379 not available")
    r = replicas(redis=shared)
    rpm = 4
    _, secret = _create(r.store_url, KeySpec(f"rpm-{'redis' if shared else 'mem'}", rpm=rpm))
    time.sleep(REFRESH_S * 3)
    # The limiter's sliding window weighs the previous minute's count by what is left of it, so a
    # burst that crosses a minute boundary gets one extra request per counter. Start clear of it.
    left = 60.0 - time.time() % 60.0
    if left < 15.0:
        time.sleep(left + 0.5)
    codes = [r.chat(i % 2, secret, "local-a").status_code for i in range(rpm * 2 + 2)]
    assert set(codes) <= {200, 429}
    if shared:
        assert codes.count(200) == rpm and codes[:rpm] == [200] * rpm  # one limit for both replicas
    else:
        assert codes.count(200) == rpm * 2  # each process counts alone: why Redis exists


def test_refuses_non_loopback_without_master_key(tmp_path: Path) -> None:
    env = {"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WILTON_MASTER_KEY": ""}
    import os

    p = subprocess.run([sys.executable, "-m", "wilton_core.router.cli", "--host", "0.0.0.0", "--port", "0",
                        "--validate-and-exit"], env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "WILTON_MASTER_KEY" in lines[0] and "--allow-unauthenticated" in lines[0]
    p = subprocess.run([sys.executable, "-m", "wilton_core.router.cli", "--host", "0.0.0.0", "--port", "0",
                        "--validate-and-exit", "--allow-unauthenticated"], env={**os.environ, **env},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
