"""wiltonctl status: probes over httpx.MockTransport and a real exporter on port 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from wilton_core.cli.status import ProcessSpec, app, collect_status, default_specs
from wilton_core.exporter.service import ExporterService
from wilton_core.settings import Settings
from wilton_core.store.sqlite import SqliteStore


def _transport(up: set[str]) -> httpx.MockTransport:
    def handler(req: httpx.Request) -> httpx.Response:
        key = f"{req.url.port}{req.url.path}"
        if key in up:
            return httpx.Response(200, json={"status": "ok"})
        if req.url.port == 8080:
            return httpx.Response(503, json={"status": "no usable model"})
        raise httpx.ConnectError("refused", request=req)

    return httpx.MockTransport(handler)


def test_health_pid_and_detail(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "exporter.pid").write_text(f"{sleeper.pid}\n")
        (tmp_path / "coherence.pid").write_text("999999999\n")  # stale
        (tmp_path / "insight.pid").write_text(f"{sleeper.pid}\n")
        specs = [
            ProcessSpec("router", "http://127.0.0.1:8080", "/healthz", "/readyz", "router"),
            ProcessSpec("exporter", "http://127.0.0.1:8000", "/healthz", None, "exporter"),
            ProcessSpec("coherence", "http://127.0.0.1:8001", "/healthz", None, "coherence"),
            ProcessSpec("insight", None, pid_name="insight"),
            ProcessSpec("local model", "http://127.0.0.1:11434", "/api/tags"),
        ]
        rows = {r.name: r for r in collect_status(
            specs, tmp_path, transport=_transport({"8080/healthz", "8000/healthz", "8001/healthz"}))}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert rows["router"].healthy and rows["router"].detail.startswith("not ready")
    assert rows["exporter"].healthy and rows["exporter"].pid == sleeper.pid and rows["exporter"].pid_alive
    # answers on the port, but our pid file names a dead process: something else owns the port
    assert not rows["coherence"].healthy and rows["coherence"].detail == "pid file stale"
    assert rows["insight"].healthy and rows["insight"].port is None
    assert not rows["local model"].healthy and "unreachable" in rows["local model"].detail
    assert rows["local model"].port == 11434


def test_default_specs_follow_settings_and_local_models() -> None:
    s = Settings(router_port=18080, exporter_port=18000, coherence_port=18001)
    specs = {sp.name: sp for sp in default_specs(s)}
    assert specs["router"].port == 18080 and specs["exporter"].port == 18000 and specs["coherence"].port == 18001
    local = [sp for sp in specs.values() if sp.name.startswith("local model")]
    assert local and local[0].health_path == "/models"


def test_cli_json_against_a_real_exporter(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    store.migrate()
    with ExporterService(store, port=0) as svc:
        port = svc.port
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "exporter.pid").write_text(f"{os.getpid()}\n")
        env = {"WILTON_EXPORTER_PORT": str(svc.port), "WILTON_ROUTER_PORT": "1", "WILTON_COHERENCE_PORT": "1",
               "WILTON_LOCAL_BASE_URL": "http://127.0.0.1:1/v1"}
        result = CliRunner().invoke(app, ["--json", "--run-dir", str(tmp_path / "run"), "--timeout", "1"], env=env)
    store.close()
    assert result.exit_code == 1, result.output  # the router and others are down
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["exporter"]["healthy"] is True and rows["exporter"]["pid"] == os.getpid()
    assert rows["exporter"]["port"] == port
    assert rows["router"]["healthy"] is False


def test_api_tier_message_says_why_phi_cannot_move() -> None:
    from wilton_core.cli.status import api_tier
    from wilton_core.config import default_config
    from wilton_core.demo import demo_config

    none = api_tier(default_config({}), {})
    assert none.configured == ()
    msg = none.message()
    assert "not configured" in msg and "OPENAI_API_KEY" in msg and "GROQ_API_KEY" in msg and "phi reads 1.0" in msg
    some = api_tier(default_config({}), {"GROQ_API_KEY": "k"})
    assert some.configured == ("groq-llama-8b",) and "groq-llama-8b" in some.message()
    demo = api_tier(demo_config("http://127.0.0.1:8090/v1", environ={}), {})
    assert demo.simulated == ("sim-frontier",) and "simulated" in demo.message()


def test_a_listening_but_silent_server_is_busy_not_down(tmp_path: Path) -> None:
    import socket

    # the kernel completes the handshake from the backlog; nothing ever answers (a llama.cpp
    # server in the middle of a generation looks like this)
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connection refused
        busy_port, down_port = silent.getsockname()[1], closed.getsockname()[1]
        rows = collect_status([ProcessSpec("busy", f"http://127.0.0.1:{busy_port}/v1", "/models"),
                               ProcessSpec("down", f"http://127.0.0.1:{down_port}/v1", "/models")],
                              tmp_path, timeout_s=0.3)
    busy, down = rows
    assert busy.busy and not busy.healthy and busy.detail.startswith("busy")
    assert not down.busy and not down.healthy and "unreachable" in down.detail


DEMO_CONFIG = """
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
simulated = true
"""
KEY_VARS = ("OPENAI_API_KEY", "GROQ_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_KEY", "GOOGLE_API_KEY",
            "GEMINI_API_KEY", "WILTON_CONFIG", "OLLAMA_HOST", "WILTON_ROUTER_URL", "WILTON_COHERENCE_URL")


def test_status_against_real_processes_busy_is_up_and_the_router_names_its_api_tier(tmp_path: Path) -> None:
    """issue 18: exit 1 on a healthy stack while the local model generated ("busy") or because the
    insight hook was "not started here"; and "API tier: not configured" while the router served
    sim-frontier (status re-read the config instead of asking the router)."""
    import socket

    from wilton_core.testing.fake_upstream import FakeUpstream
    from wilton_core.testing.procs import ManagedProcess, free_port

    cfg = tmp_path / "demo.toml"
    base = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env = {"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WILTON_DATA_DIR": str(tmp_path / "data")}
    rport, cport, eport = free_port(), free_port(), free_port()
    procs: list[ManagedProcess] = []
    with FakeUpstream(models=["local-small", "sim-frontier"]) as fake, socket.socket() as silent:
        cfg.write_text(DEMO_CONFIG.format(fake=fake.url))
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # a llama.cpp server busy generating: connects, never answers
        try:
            procs.append(ManagedProcess.python_module(
                "wilton_core.router.cli", "--config", str(cfg), "--port", str(rport), env=env,
                log=tmp_path / "router.log").start(f"http://127.0.0.1:{rport}/readyz", timeout=60))
            procs.append(ManagedProcess.python_module(
                "wilton_core.coherence.cli", "--port", str(cport), "--config", str(cfg),
                env={**env, "WILTON_ADMIN_PASSWORD": "status-test-pass"},
                log=tmp_path / "coherence.log").start(f"http://127.0.0.1:{cport}/healthz", timeout=60))
            exporter = ManagedProcess.python_module(
                "wilton_core.exporter.cli", "--port", str(eport), env=env,
                log=tmp_path / "exporter.log").start(f"http://127.0.0.1:{eport}/healthz", timeout=60)
            procs.append(exporter)
            # this shell has no WILTON_CONFIG: its config (embedded defaults, no keys) has no API model
            run_env = {**base, **env, "WILTON_ROUTER_PORT": str(rport), "WILTON_COHERENCE_PORT": str(cport),
                       "WILTON_EXPORTER_PORT": str(eport), "COLUMNS": "200",
                       "WILTON_LOCAL_BASE_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/v1"}
            cmd = [sys.executable, "-m", "wilton_core.cli.main", "status", "--run-dir", str(tmp_path / "run"),
                   "--timeout", "1"]
            r = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "API tier: sim-frontier (simulated: sim-frontier)" in r.stdout
            assert "not configured" not in r.stdout
            rows = {row["name"]: row for row in json.loads(subprocess.run(
                [*cmd, "--json"], env=run_env, capture_output=True, text=True, timeout=60).stdout)}
            assert rows["local model local-small"]["state"] == "busy"
            assert rows["insight"]["state"] == "not started here"
            assert {rows[n]["state"] for n in ("router", "coherence", "exporter")} == {"up"}
            exporter.stop()
            down = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=60)
            assert down.returncode == 1
            assert "down" in down.stdout
        finally:
            for p in procs:
                p.stop()


def test_status_help_documents_the_exit_codes() -> None:
    from wilton_core.cli.main import app as wiltonctl

    out = " ".join(CliRunner().invoke(wiltonctl, ["status", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "Exit status: 0 when nothing is down, 1 when at least one process is down" in out
    assert "busy" in out and "not started here" in out


def test_a_config_that_does_not_load_is_down_and_says_why(tmp_path: Path) -> None:
    from wilton_core.cli.status import exit_code

    bad = tmp_path / "bad.toml"
    bad.write_text('[[models]]\nid = "a"\nprovider = "openai"\nmodel = "x"\ntier = "selfhost"\nis_local = "yes"\n')
    specs = [s for s in default_specs(Settings(config=bad)) if s.name == "local model"]
    rows = collect_status(specs, tmp_path, timeout_s=0.3)
    assert rows[0].state == "down" and rows[0].detail.startswith("config error: ")
    assert exit_code(rows) == 1


def test_the_api_tier_is_chat_models_only() -> None:
    """An API speech or embedding model without its key is not a missing chat API model (the
    fresh-clone walk printed "..., its key" for the default config's Groq whisper entry)."""
    from wilton_core.cli.status import api_tier_from_router

    body = {"data": [
        {"id": "auto", "wilton": {"description": "let the router choose"}},
        {"id": "gpt-4o", "wilton": {"is_local": False, "configured": False, "kind": "chat",
                                    "reason": "set OPENAI_API_KEY"}},
        {"id": "groq-whisper", "wilton": {"is_local": False, "configured": False, "kind": "stt"}},
        {"id": "api-embed", "wilton": {"is_local": False, "configured": True, "kind": "embedding"}},
    ]}
    tier = api_tier_from_router(body)
    assert tier is not None
    assert tier.missing == (("gpt-4o", "OPENAI_API_KEY"),)
    assert tier.configured == ()
