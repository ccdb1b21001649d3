"""`wiltonctl hpc` end to end: the real CLI, a real wilton-router process, FakeUpstream behind it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wilton_core.core.control_state import ControlState
from wilton_core.hpc.repo import TaskRepo
from wilton_core.store import open_store
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]

CONFIG = """
[[models]]
id = "local-small"
provider = "openai"
model = "local-small"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "basic"

[[models]]
id = "sim-frontier"
provider = "openai"
model = "sim-frontier"
base_url = "{fake}/v1"
tier = "frontier"
is_local = false
capability = "advanced"
supports_vision = true
input_cost_per_mtok = 2.5
output_cost_per_mtok = 10.0
simulated = true
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hpc-e2e")
    fake = FakeUpstream(models=["local-small", "sim-frontier"]).start()
    cfg = tmp / "wilton.toml"
    cfg.write_text(CONFIG.format(fake=fake.url))
    db = tmp / "wilton.db"
    store = open_store(f"sqlite:///{db}")
    # no coherence daemon here: a fixed threshold sends the harder requests to the API tier
    store.put_control_state(ControlState(phi_target=0.75, threshold=0.65, updated_at=time.time()))
    store.close()
    port = free_port()
    env = {"WILTON_STORE_URL": f"sqlite:///{db}", "WILTON_LEDGER_FLUSH_S": "0.05"}
    router = ManagedProcess.python_module("wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                                          env=env, log=tmp / "router.log").start(
        f"http://127.0.0.1:{port}/readyz", timeout=60)
    yield {"tmp": tmp, "db": db, "router_url": f"http://127.0.0.1:{port}", "fake": fake, "env": env}
    router.stop()
    fake.stop()


def wiltonctl(stack, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**stack["env"], "WILTON_ROUTER_URL": stack["router_url"], "WILTON_RUN_DIR": str(stack["tmp"] / "run"),
           "COLUMNS": "160", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "wilton_core.cli.main", "hpc", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_schedule_demo_file_through_the_router(stack):
    r = wiltonctl(stack, "schedule-task", "examples/llm_demo.json", "--no-progress")
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout
    bid = out.split()[1].rstrip(":")
    assert "local-small" in out and "sim-frontier" in out and "phi over the batch:" in out
    store = open_store(f"sqlite:///{stack['db']}")
    try:
        tasks = TaskRepo(store).tasks(bid)
        assert len(tasks) == len(json.loads((ROOT / "examples/llm_demo.json").read_text())["tasks"])
        assert all(t.result.status == "ok" for t in tasks), [t.result.error for t in tasks]
        models = {t.result.model_id for t in tasks}
        assert models == {"local-small", "sim-frontier"}
        # vision needs a vision model: never the local one here
        assert all(t.result.model_id == "sim-frontier" for t in tasks if t.intent == "vision")
        for t in tasks:
            assert t.result.text.startswith(f"[{t.result.model_id}]")  # the fake echoes the model it ran
            expected_cost = (t.result.tokens_in * 2.5 + t.result.tokens_out * 10.0) / 1e6 \
                if t.result.model_id == "sim-frontier" else 0.0
            assert t.result.cost_usd == pytest.approx(expected_cost)
        local = sum(1 for t in tasks if t.result.is_local)
        assert f"{local / len(tasks):.2f} ({local} local / {len(tasks)} answered)" in out
    finally:
        store.close()
    res = wiltonctl(stack, "results", bid, "--json")
    data = json.loads(res.stdout)
    assert data["summary"]["ok"] == len(tasks) and data["tasks"][0]["text"]
    st = json.loads(wiltonctl(stack, "status", bid, "--json").stdout)
    assert st[0]["status"] == "done" and st[0]["counts"] == {"ok": len(tasks)}


def test_invalid_file_exits_2_and_stores_nothing(stack, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "tasks": [{"prompt": "ok"}, {"prompt": "x", "max_tokens": -1}]}))
    before = json.loads(wiltonctl(stack, "status", "--json").stdout)
    r = wiltonctl(stack, "schedule-task", str(bad))
    assert r.returncode == 2
    assert "tasks[1].max_tokens" in r.stderr
    assert json.loads(wiltonctl(stack, "status", "--json").stdout) == before


def test_no_wait_runs_in_background(stack):
    r = wiltonctl(stack, "schedule-task", "examples/llm_demo.json", "--no-wait")
    assert r.returncode == 0, r.stderr
    bid = r.stdout.strip()
    assert bid.startswith("b-")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = json.loads(wiltonctl(stack, "status", bid, "--json").stdout)[0]
        if st["status"] == "done":
            break
        time.sleep(0.3)
    assert st["status"] == "done" and st["counts"].get("ok") == st["total"]
    assert (stack["tmp"] / "run" / f"hpc-{bid}.log").exists()


def test_unreachable_router_keeps_batch_then_resume(stack):
    dead = f"http://127.0.0.1:{free_port()}"
    env_run = dict(stack, router_url=dead)
    r = wiltonctl(env_run, "schedule-task", "examples/llm_demo.json", "--no-progress")
    assert r.returncode == 1 and "router not reachable" in r.stderr and "wiltonctl hpc resume" in r.stderr
    bid = r.stdout.split()[1].rstrip(":")
    st = json.loads(wiltonctl(stack, "status", bid, "--json").stdout)[0]
    assert st["status"] == "pending" and st["counts"] == {"pending": st["total"]}
    ok = wiltonctl(stack, "resume", bid, "--no-progress")
    assert ok.returncode == 0, ok.stderr
    st = json.loads(wiltonctl(stack, "status", bid, "--json").stdout)[0]
    assert st["status"] == "done" and st["counts"] == {"ok": st["total"]}


def test_a_batch_stuck_against_a_dead_router_can_be_cancelled_then_deleted(stack):
    # issue 18: a batch stored against a dead router lingered with no way out
    dead = dict(stack, router_url=f"http://127.0.0.1:{free_port()}")
    r = wiltonctl(dead, "schedule-task", "examples/llm_demo.json", "--no-progress")
    assert r.returncode == 1
    bid = r.stdout.split()[1].rstrip(":")
    assert wiltonctl(stack, "cancel", "b-nope").returncode == 2
    c = wiltonctl(stack, "cancel", bid)
    assert c.returncode == 0, c.stderr
    st = json.loads(wiltonctl(stack, "status", bid, "--json").stdout)[0]
    assert st["status"] == "done" and st["counts"] == {"error": st["total"]}
    res = json.loads(wiltonctl(stack, "results", bid, "--json").stdout)
    assert res["summary"]["error_kinds"] == {"cancelled": st["total"]}
    d = wiltonctl(stack, "delete", bid)
    assert d.returncode == 0 and f"batch {bid} deleted ({st['total']} task(s))" in d.stdout
    gone = wiltonctl(stack, "status", bid)
    assert gone.returncode == 2 and "no batch" in gone.stderr


def test_cancel_refuses_a_batch_a_live_runner_holds(stack, make_spec):
    store = open_store(f"sqlite:///{stack['db']}")
    try:
        repo = TaskRepo(store)
        bid = repo.create_batch(make_spec(2), now=time.time(), concurrency=1)
        assert repo.acquire(bid, "runner-x", now=time.time(), ttl_s=600)
    finally:
        store.close()
    r = wiltonctl(stack, "cancel", bid)
    assert r.returncode == 1 and "being run right now" in r.stderr and "--force" in r.stderr
    assert wiltonctl(stack, "cancel", bid, "--force").returncode == 0
