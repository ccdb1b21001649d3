"""`wilton-router --workers N` (granian's workers): N processes on one port, each its own ledger
replica; graceful stop flushes every worker; a dead worker is respawned under the same replica id;
a worker never outlives its supervisor."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from wilton_core.router.granian_server import claim_slot
from wilton_core.store import open_store
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

CONFIG = """
[[models]]
id = "local-a"
provider = "openai"
model = "local-a"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "standard"
context_window = 8192

[routing]
probe_models = false
"""


def test_worker_slots_are_the_lowest_free_and_freed_with_their_holder(tmp_path: Path) -> None:
    import subprocess
    import sys

    # a slot is held by an open lock file: another process holding slot 0 pushes us to slot 1;
    # once it exits, slot 0 is free again
    code = ("import sys, time; from pathlib import Path; from wilton_core.router.granian_server import claim_slot; "
            "print(claim_slot(Path(sys.argv[1])), flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"0"
        assert claim_slot(tmp_path) == 1
    finally:
        holder.kill()
        holder.wait()
    assert claim_slot(tmp_path) == 0


def _ledger(store_url: str) -> list[tuple[str, str]]:
    store = open_store(store_url, migrate=False)
    try:
        return [(str(r[0]), str(r[1])) for r in store.query("SELECT request_id, replica FROM ledger")]
    finally:
        store.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_two_workers_share_the_port_record_as_replicas_and_survive_a_dead_worker(tmp_path: Path) -> None:
    import psutil

    fake = FakeUpstream(models=["local-a"], name="workers").start()
    cfg = tmp_path / "wilton.toml"
    cfg.write_text(CONFIG.format(fake=fake.url))
    store_url = f"sqlite:///{tmp_path / 'wilton.db'}"
    port = free_port()
    router = ManagedProcess.python_module(
        "wilton_core.router.cli", "--config", str(cfg), "--port", str(port), "--workers", "2",
        "--replica-id", "box", "--server", "granian", env={"WILTON_STORE_URL": store_url, "WILTON_LOG_LEVEL": "warning"},
        log=tmp_path / "router.log")
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    seen: list[str] = []
    try:
        router.start(f"http://127.0.0.1:{port}/readyz", timeout=60)
        assert router.proc is not None

        def send(n: int) -> None:
            for _ in range(n):  # a new connection each: the kernel spreads connections, not requests
                r = httpx.post(url, json=body, timeout=10, headers={"connection": "close"})
                assert r.status_code == 200, r.text
                seen.append(r.headers["x-request-id"])

        # both workers must have bound before the kernel can spread over them
        deadline = time.monotonic() + 30
        while len(psutil.Process(router.proc.pid).children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        send(40)

        workers = psutil.Process(router.proc.pid).children()
        assert len(workers) == 2
        workers[0].kill()  # kill -9 one worker: the others keep serving, the supervisor restarts it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            kids = psutil.Process(router.proc.pid).children()
            if len(kids) == 2 and workers[0].pid not in {k.pid for k in kids}:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the dead worker was not restarted")
        time.sleep(1.5)  # the new worker's start-up
        send(20)

        router.proc.send_signal(signal.SIGTERM)
        assert router.proc.wait(timeout=40) == 0
    finally:
        router.stop()
        fake.stop()
    rows = _ledger(store_url)
    replicas = {rep for _, rep in rows}
    assert replicas <= {"box-w0", "box-w1"} and replicas == {"box-w0", "box-w1"}, replicas
    # a graceful stop flushed every worker: each of the last 20 answers is in the ledger (the
    # first 40 may lose what the killed worker had not flushed yet: at most its flush window)
    ids = {rid for rid, _ in rows}
    assert set(seen[40:]) <= ids


@pytest.mark.e2e
def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    import psutil

    fake = FakeUpstream(models=["local-a"], name="orphans").start()
    cfg = tmp_path / "wilton.toml"
    cfg.write_text(CONFIG.format(fake=fake.url))
    port = free_port()
    router = ManagedProcess.python_module(
        "wilton_core.router.cli", "--config", str(cfg), "--port", str(port), "--workers", "2", "--server", "granian",
        env={"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'wilton.db'}", "WILTON_LOG_LEVEL": "warning"},
        log=tmp_path / "router.log")
    try:
        router.start(f"http://127.0.0.1:{port}/readyz", timeout=60)
        assert router.proc is not None
        deadline = time.monotonic() + 30
        while len(psutil.Process(router.proc.pid).children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = psutil.Process(router.proc.pid).children()
        assert len(workers) == 2
        time.sleep(1.0)  # both started (a SIGTERM mid-start-up is the watchdog's: 30 s more)
        router.kill()  # kill -9 the supervisor: its workers must not keep the port
        _gone, alive = psutil.wait_procs(workers, timeout=45)
        assert not alive, f"orphaned workers: {[p.pid for p in alive]}"
    finally:
        router.stop()
        fake.stop()
