"""Out of the box: the real llama.cpp server with the bundled SmolLM2, the router with the embedded
defaults plus the demo's simulated frontier model, the coherence daemon, and `wiltonctl hpc
schedule-task` on the demo task file. Then the same through scripts/up.sh --demo and down.sh."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.llama]
ROOT = Path(__file__).parents[2]


def _local_server_argv(port: int) -> list[str]:
    from wilton_core.localmodel import LocalModelMissing, LocalServerSpec, find_gguf, server_argv

    try:
        return server_argv(LocalServerSpec(find_gguf(), port=port, n_threads=2))
    except LocalModelMissing as e:
        pytest.skip(f"the [local] extra is not installed: {e}")


def _base_env(tmp: Path) -> dict[str, str]:
    # no API key of the embedded API models may leak in from the developer's shell
    drop = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY", "GEMINI_KEY", "GOOGLE_API_KEY",
            "GEMINI_API_KEY", "OLLAMA_HOST", "WILTON_CONFIG", "WILTON_STORE_URL", "WILTON_ROUTER_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("WILTON_")}
    env.update({"WILTON_DATA_DIR": str(tmp / "data"), "WILTON_RUN_DIR": str(tmp / "run"), "COLUMNS": "160"})
    return env


def test_demo_batch_over_real_local_model(tmp_path):
    from wilton_core.demo import config_to_toml, demo_config
    from wilton_core.testing.fake_script import Script
    from wilton_core.testing.fake_upstream import FakeUpstream

    local_port, router_port, coh_port = free_port(), free_port(), free_port()
    argv = _local_server_argv(local_port)
    env = _base_env(tmp_path)
    env["WILTON_LOCAL_BASE_URL"] = f"http://127.0.0.1:{local_port}/v1"
    procs: list[ManagedProcess] = []
    sim = FakeUpstream(default=Script(profile="frontier"), models=["sim-frontier"], name="sim-frontier").start()
    try:
        procs.append(ManagedProcess(argv, env=env, log=tmp_path / "llama.log").start(
            f"http://127.0.0.1:{local_port}/v1/models", timeout=120))
        cfg = tmp_path / "wilton.demo.toml"
        cfg.write_text(config_to_toml(demo_config(sim.url + "/v1", env)))
        procs.append(ManagedProcess.python_module(
            "wilton_core.coherence.cli", "--interval", "1", "--port", str(coh_port), "--config", str(cfg),
            env=env, log=tmp_path / "coherence.log").start(f"http://127.0.0.1:{coh_port}/healthz", timeout=60))
        procs.append(ManagedProcess.python_module(
            "wilton_core.router.cli", "--config", str(cfg), "--port", str(router_port),
            env={**env, "WILTON_LEDGER_FLUSH_S": "0.1"}, log=tmp_path / "router.log").start(
            f"http://127.0.0.1:{router_port}/readyz", timeout=60))
        router = f"http://127.0.0.1:{router_port}"
        models = {m["id"]: m["wilton"] for m in httpx.get(router + "/v1/models", timeout=10).json()["data"]
                  if m["id"] != "auto"}
        assert models["sim-frontier"]["simulated"] and models["sim-frontier"]["configured"]
        assert models["local-small"]["configured"] and models["local-small"]["is_local"]
        assert models["gpt-4o"]["status"] == "not_configured"       # no key: said, not hidden
        assert (tmp_path / "data" / "coherence-admin-password").exists()

        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "wilton_core.cli.main", "hpc", "schedule-task", "--file",
                            "examples/llm_demo.json", "--no-progress"],
                           env={**env, "WILTON_ROUTER_URL": router}, cwd=ROOT, capture_output=True, text=True,
                           timeout=150)
        elapsed = time.monotonic() - t0
        assert r.returncode == 0, r.stderr + r.stdout
        out = r.stdout
        print(out, f"\nbatch wall time {elapsed:.1f}s")
        assert re.search(r"selfhost\s+│\s+local-small", out) and re.search(r"frontier\s+│\s+sim-frontier", out)
        assert "phi over the batch:" in out

        bid = out.split()[1].rstrip(":")
        res = json.loads(subprocess.run(
            [sys.executable, "-m", "wilton_core.cli.main", "hpc", "results", bid, "--json"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=30, check=True).stdout)
        tasks = res["tasks"]
        local = [t for t in tasks if t["model"] == "local-small"]
        api = [t for t in tasks if t["model"] == "sim-frontier"]
        assert local and api, [t["model"] for t in tasks]
        assert all(t["status"] == "ok" for t in tasks), [t["error"] for t in tasks if t["status"] != "ok"]
        # real answers from the real model: non-empty text, real token counts, not the fake's echo
        assert all(t["text"].strip() and not t["text"].startswith("[") for t in local)
        assert all(t["tokens_out"] > 0 and t["cost_usd"] == 0.0 for t in local)
        assert all(t["text"].startswith("[sim-frontier]") and t["cost_usd"] > 0 for t in api)
        assert all(t["model"] == "sim-frontier" for t in tasks if t["intent"] == "vision")
        assert res["summary"]["phi"] == pytest.approx(len(local) / len(tasks))
        assert elapsed < 150
    finally:
        for p in reversed(procs):
            p.stop()
        sim.stop()


def _pids(run: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in run.glob("*.pid")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_up_demo_is_idempotent_and_down_stops_everything(tmp_path):
    _local_server_argv(0)  # skip early without the [local] extra
    env = _base_env(tmp_path)
    ports = {name: str(free_port()) for name in ("WILTON_ROUTER_PORT", "WILTON_EXPORTER_PORT",
                                                 "WILTON_COHERENCE_PORT", "WILTON_LOCAL_PORT", "WILTON_DEMO_PORT")}
    env.update(ports, WILTON_VENV=sys.prefix, WILTON_SKIP_OLLAMA_PROBE="1", WILTON_COHERENCE_INTERVAL_S="2",
               WILTON_LOCAL_THREADS="1", WILTON_STOP_GRACE_S="15")
    run = tmp_path / "run"
    started: dict[str, int] = {}
    try:
        t0 = time.monotonic()
        up = subprocess.run(["bash", "scripts/up.sh", "--demo", "--no-install"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
        up_s = time.monotonic() - t0
        assert up.returncode == 0, up.stderr + up.stdout
        started = _pids(run)
        assert set(started) == {"local-model", "demo-upstream", "router", "exporter", "coherence", "insight"}
        assert all(_alive(p) for p in started.values())
        out = up.stdout
        for port in ports.values():
            if port != ports["WILTON_DEMO_PORT"]:
                assert port in out
        assert "sim-frontier (SIMULATED)" in out
        pw_file = tmp_path / "data" / "coherence-admin-password"
        assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
        assert pw_file.read_text().strip() in out
        # the router answers with the local model and says so in its headers
        router = f"http://127.0.0.1:{ports['WILTON_ROUTER_PORT']}"
        r = httpx.post(router + "/v1/chat/completions", timeout=60, json={
            "model": "local-small", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8})
        assert r.status_code == 200 and r.headers["x-wilton-local"] == "true"
        assert r.json()["choices"][0]["message"]["content"].strip()

        again = subprocess.run(["bash", "scripts/up.sh", "--demo", "--no-install"], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert _pids(run) == started                                 # nothing started twice
        assert again.stderr.count("already running") == len(started)
        assert " started (pid" not in again.stderr
        print(f"up.sh --demo cold: {up_s:.1f}s")

        t0 = time.monotonic()
        down = subprocess.run(["bash", "scripts/down.sh"], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        print(f"down.sh: {time.monotonic() - t0:.1f}s")
        assert down.returncode == 0, down.stderr
        assert not list(run.glob("*.pid"))
        assert not any(_alive(p) for p in started.values())
        order = [line.split()[1] for line in down.stderr.splitlines() if line.endswith(" stopped")]
        assert order == ["insight", "coherence", "exporter", "router", "demo-upstream", "local-model"]
    finally:
        for pid in _pids(run).values():   # only what this test's up.sh started, by pid
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
