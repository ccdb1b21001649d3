"""Process faults: SIGTERM and kill -9 of the router under load, kill -9 of the coherence daemon
mid-step and of the exporter mid-scrape, and several routers writing one SQLite store.

Ledger rows are matched to what clients saw by request id (the `x-request-id` header):
- graceful stop: every request a client saw succeed is in the ledger;
- kill -9: the loss is bounded by the ledger writer's flush window (WILTON_LEDGER_FLUSH_S).
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import threading
import time

import httpx
import pytest

from wilton_core.store import open_store
from wilton_core.testing.procs import ManagedProcess, free_port
from wilton_core.types import LedgerRecord

from ._bench import load

faults = load("faults")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _drive_in_thread(urls, seconds, concurrency, out):
    def run():
        out.extend(asyncio.run(faults.drive(urls, seconds=seconds, requests=20_000, concurrency=concurrency,
                                            stream_every=4, client_timeout=10)))
    t = threading.Thread(target=run)
    t.start()
    return t


def _ledger_ids(store_url: str) -> set[str]:
    return {r[0] for r in faults.ledger_rows(store_url, "request_id")}


def _integrity(db) -> str:
    with sqlite3.connect(db) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def test_sigterm_under_load_loses_nothing_a_client_saw(tmp_path) -> None:
    stack = faults.RouterStack(tmp_path).start()
    try:
        out: list = []
        t = _drive_in_thread(stack.urls, 3.0, 6, out)
        time.sleep(1.5)
        stack.routers[0].signal(signal.SIGTERM)
        rc = stack.routers[0].proc.wait(timeout=30)
        t.join(timeout=30)
    finally:
        stack.stop()
    assert rc == 0, stack.log_text()[-2000:]
    ok = {r.request_id for r in out if r.ok}
    assert len(ok) > 50  # the load really ran
    missing = ok - _ledger_ids(stack.store_url)
    assert not missing, f"{len(missing)} of {len(ok)} answered requests are not in the ledger"


def test_kill_9_under_load_loses_at_most_the_flush_window_then_restarts(tmp_path) -> None:
    flush_s = 0.2
    stack = faults.RouterStack(tmp_path, flush_s=flush_s).start()
    try:
        out: list = []
        t0 = time.monotonic()
        t = _drive_in_thread(stack.urls, 3.0, 6, out)
        time.sleep(1.5)
        stack.routers[0].kill()
        killed_after = time.monotonic() - t0
        t.join(timeout=30)
        ok = {r.request_id for r in out if r.ok}
        rate = len(ok) / killed_after
        missing = ok - _ledger_ids(stack.store_url)
        # at most what was answered since the last flush (one interval), plus one interval of slack
        bound = rate * 2 * flush_s
        assert len(missing) <= bound, (len(missing), bound, rate)
        db = tmp_path / "wilton.db"
        assert _integrity(db) == "ok"
        # restart on the same store and port: it serves and records again
        before = len(_ledger_ids(stack.store_url))
        port = int(stack.url.rsplit(":", 1)[1])
        stack.start_router("r0", port=port)
        again = asyncio.run(faults.drive(stack.urls, requests=20, concurrency=2))
        assert all(r.ok for r in again)
    finally:
        stack.stop()
    assert len(_ledger_ids(stack.store_url)) >= before + 20
    print(f"kill -9: {len(ok)} answered, {len(missing)} not in the ledger (bound {bound:.0f} at {rate:.0f} req/s)")


def test_several_routers_on_one_sqlite_store_no_locked_errors(tmp_path) -> None:
    # a tiny flush interval makes the three writers contend for the SQLite write lock all the time
    stack = faults.RouterStack(tmp_path, flush_s=0.01).start(replicas=3)
    try:
        out = asyncio.run(faults.drive(stack.urls, seconds=4.0, requests=6000, concurrency=9, stream_every=5))
    finally:
        codes = stack.stop()
    assert codes == [0, 0, 0]
    bad = [r for r in out if not r.ok]
    assert not bad, bad[:5]
    assert len(out) > 100
    assert "locked" not in stack.log_text().lower()
    ids = _ledger_ids(stack.store_url)
    assert {r.request_id for r in out} <= ids
    replicas = {r[0] for r in faults.ledger_rows(stack.store_url, "DISTINCT replica")}
    assert {"r0", "r1", "r2"} <= replicas


def _seed_ledger(url: str, n: int = 400) -> None:
    store = open_store(url)
    now = time.time()
    rng = random.Random(7)
    recs = [LedgerRecord(ts=now - rng.random() * 50, request_id=f"seed-{i}", model_id="local-a" if i % 4 else "api-a",
                         tier="selfhost" if i % 4 else "edge", is_local=bool(i % 4), provider="openai",
                         difficulty=rng.random(), latency_s=0.01) for i in range(n)]
    store.insert_ledger(recs)
    store.close()


def test_kill_9_coherence_daemon_mid_step_store_stays_consistent(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'wilton.db'}"
    _seed_ledger(url)
    env = {"WILTON_STORE_URL": url, "WILTON_DATA_DIR": str(tmp_path / "data"), "WILTON_ADMIN_PASSWORD": "pw-kill9-test"}
    rng = random.Random(3)
    steps_seen = []
    for cycle in range(4):
        port = free_port()
        d = ManagedProcess.python_module("wilton_core.coherence.cli", "--port", str(port), "--interval", "0.05",
                                         env=env, log=tmp_path / f"coherence-{cycle}.log")
        d.start(f"http://127.0.0.1:{port}/healthz", timeout=60)
        time.sleep(0.3 + rng.random() * 0.5)  # ~6-16 steps, killed at an arbitrary point of one
        d.kill()
        d.stop()
        assert _integrity(tmp_path / "wilton.db") == "ok"
        store = open_store(url)
        try:
            st = store.get_control_state()
            hist = store.control_history(0, time.time() + 10)
        finally:
            store.close()
        assert st is not None and 0 <= st.threshold <= 1 and 0 <= st.phi_target <= 1
        steps_seen.append(st.steps)
        # each published step wrote its history row in the same transaction: never one without the other
        assert len(hist) == st.steps, (len(hist), st.steps)
    assert steps_seen == sorted(steps_seen) and steps_seen[-1] > steps_seen[0]  # restarts continue the count


def test_kill_9_exporter_mid_scrape_then_restart_reports_the_same_counts(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'wilton.db'}"
    _seed_ledger(url, 1000)
    env = {"WILTON_STORE_URL": url}

    def start():
        port = free_port()
        p = ManagedProcess.python_module("wilton_core.exporter.cli", "--port", str(port), env=env,
                                         log=tmp_path / "exporter.log")
        p.start(f"http://127.0.0.1:{port}/metrics", timeout=60)
        return p, f"http://127.0.0.1:{port}/metrics"

    def total(text: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("wilton_requests_total{"))

    exp, murl = start()
    before = total(httpx.get(murl, timeout=10).text)
    assert before == 1000
    errors: list[str] = []
    stop = threading.Event()

    def scrape():
        with httpx.Client(timeout=5) as c:
            while not stop.is_set():
                try:
                    c.get(murl)
                except httpx.HTTPError as e:
                    errors.append(type(e).__name__)
                    return

    threads = [threading.Thread(target=scrape) for _ in range(3)]
    for th in threads:
        th.start()
    time.sleep(0.7)
    exp.kill()
    exp.stop()
    stop.set()
    for th in threads:
        th.join(timeout=10)
    assert errors  # the scrapers did see the exporter die mid-scrape
    assert _integrity(tmp_path / "wilton.db") == "ok"
    exp2, murl2 = start()
    try:
        assert total(httpx.get(murl2, timeout=10).text) == before
    finally:
        exp2.stop()
