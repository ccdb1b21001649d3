"""`phi get` right after a target change and its --json; `models list` at 80 columns (issue 18)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher
from typer.testing import CliRunner

from wilton_core.cli.main import app
from wilton_core.cli.main import main as wiltonctl
from wilton_core.coherence.app import create_app
from wilton_core.coherence.service import CoherenceOptions, CoherenceService
from wilton_core.store.sqlite import SqliteStore

PASSWORD = "phi-cli-test-password"


@pytest.fixture
def coherence(tmp_path: Path) -> Iterator[str]:
    store = SqliteStore(tmp_path / "live.db")
    svc = CoherenceService(CoherenceOptions(password=PASSWORD, data_dir=tmp_path), store=store,
                           hasher=PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
                           announce=lambda s: None)
    svc.start(scheduler=False)
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    th.join(10)
    svc.stop()
    store.close()


def test_phi_get_after_a_target_change_says_nothing_is_measured_yet(coherence, tmp_path, capsys) -> None:
    common = ["--url", coherence, "--token-file", str(tmp_path / "token.json")]
    assert wiltonctl(["login", "-u", "admin", "-p", PASSWORD, *common]) == 0
    assert wiltonctl(["phi", "set", "0.6", *common]) == 0
    capsys.readouterr()
    assert wiltonctl(["phi", "get", *common]) == 0
    out = capsys.readouterr().out
    assert "no interval measured since the change (0 requests so far over the last 300 s)" in out
    assert "measured   -" not in out and "error      -" not in out
    assert wiltonctl(["phi", "get", "--json", *common]) == 0
    raw = capsys.readouterr().out
    assert raw.endswith("}\n") and raw.startswith('{\n  "phi_target": 0.6')
    data = json.loads(raw)
    assert data["measured_phi"] is None and data["window_requests"] == 0


def test_models_list_never_truncates_ids_at_80_columns(tmp_path: Path) -> None:
    cfg = tmp_path / "w.toml"
    long_id = "local-qwen2.5-coder-14b-instruct-q4"
    cfg.write_text(f'[[models]]\nid = "{long_id}"\nprovider = "openai"\nmodel = "qwen2.5-coder:14b-instruct-q4_K_M"\n'
                   'base_url = "http://127.0.0.1:1/v1"\ntier = "selfhost"\nis_local = true\n'
                   '[[models]]\nid = "api-gemini-flash-lite"\nprovider = "gemini"\nmodel = "gemini-2.5-flash-lite"\n'
                   'tier = "edge"\nis_local = false\napi_key_env = "NO_SUCH_KEY_SET"\n')
    r = CliRunner().invoke(app, ["models", "list", "--config", str(cfg), "--no-store"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.output.splitlines()) <= 80
    assert long_id in r.output and "api-gemini-flash-lite" in r.output
    assert "local…" not in r.output and "api-g…" not in r.output
