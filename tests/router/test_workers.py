"""`wilton-router --workers N`: N processes on one port, each its own ledger replica; graceful stop
flushes every worker; a dead worker is restarted; a bad start gives up with a message."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from wilton_core.router.workers import RestartPolicy, worker_argv
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


def test_restart_policy_counts_recent_restarts_only() -> None:
    p = RestartPolicy(max_restarts=3, window_s=10)
    assert p.allows([], 100.0)
    assert p.allows([1.0, 2.0, 3.0, 95.0], 100.0)  # three are older than the window
    assert not p.allows([92.0, 95.0, 99.0], 100.0)


def test_worker_argv_overrides_workers_and_replica_last() -> None:
    argv = worker_argv(["--port", "9000", "--workers", "4", "--replica-id", "x"], 2, "host")
    assert argv[-5:] == ["--workers", "1", "--replica-id", "host-w2", "--reuse-port"]
    assert argv[argv.index("--port") + 1] == "9000"


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
        "--replica-id", "box", env={"WILTON_STORE_URL": store_url, "WILTON_LOG_LEVEL": "warning"},
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
        assert router.proc.wait(timeout=30) == 0
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
def test_workers_refuse_port_zero(tmp_path: Path) -> None:
    import subprocess
    import sys

    for extra, msg in ((["--port", "0"], "fixed --port"),):
        out = subprocess.run([sys.executable, "-m", "wilton_core.router.cli", "--workers", "2", *extra],
                             env={"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}", "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and msg in out.stderr and "Traceback" not in out.stderr
