"""scripts/lib.sh driven through bash: background start with pid/log files, idempotence,
readiness wait, stop with SIGTERM then SIGKILL; and every script parses."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

LIB = ROOT / "scripts" / "lib.sh"


def _bash(script: str, run_dir: Path, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "WILTON_RUN_DIR": str(run_dir), "WILTON_LOG_DIR": str(run_dir / "logs"), **env}
    return subprocess.run(["bash", "-c", f'set -euo pipefail; . "{LIB}"; {script}'], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=run_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for pidfile in (tmp_path).glob("*.pid"):  # never leave our own test processes behind
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_all_scripts_parse() -> None:
    scripts = sorted((ROOT / "scripts").glob("*.sh"))
    names = {s.name for s in scripts}
    assert {"lib.sh", "start_dashboard.sh", "start_metrics_exporter.sh", "start_coherence_daemon.sh",
            "start_llm_insight.sh", "start_router.sh", "install_dashboard_dependencies.sh"} <= names
    for s in scripts:
        proc = subprocess.run(["bash", "-n", str(s)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{s.name}: {proc.stderr}"
        if s.name != "lib.sh":
            assert os.access(s, os.X_OK), f"{s.name} is not executable"


def test_start_is_idempotent_and_writes_pid_and_log(run_dir: Path) -> None:
    first = _bash("wilton_start sleeper sleep 60", run_dir)
    assert first.returncode == 0, first.stderr
    pid = int((run_dir / "sleeper.pid").read_text())
    assert _alive(pid)
    assert (run_dir / "logs" / "sleeper.log").exists()
    second = _bash("wilton_start sleeper sleep 60", run_dir)
    assert second.returncode == 0 and "already running" in second.stderr
    assert int((run_dir / "sleeper.pid").read_text()) == pid
    stop = _bash("wilton_stop sleeper 5", run_dir)
    assert stop.returncode == 0, stop.stderr
    assert not (run_dir / "sleeper.pid").exists()
    assert not _alive(pid)


def test_stale_pid_file_does_not_block_a_start(run_dir: Path) -> None:
    (run_dir / "stale.pid").write_text("999999999\n")
    proc = _bash("wilton_start stale sleep 60", run_dir)
    assert proc.returncode == 0 and "started" in proc.stderr
    assert int((run_dir / "stale.pid").read_text()) != 999999999


def test_stop_escalates_to_sigkill_after_the_grace(run_dir: Path) -> None:
    started = _bash("wilton_start stubborn bash -c 'trap \"\" TERM; while :; do sleep 0.1; done'", run_dir)
    assert started.returncode == 0, started.stderr
    pid = int((run_dir / "stubborn.pid").read_text())
    t0 = time.monotonic()
    stop = _bash("wilton_stop stubborn 1", run_dir)
    assert stop.returncode == 0 and "SIGKILL" in stop.stderr
    assert 0.9 < time.monotonic() - t0 < 10
    time.sleep(0.1)
    assert not _alive(pid)


def test_a_command_that_dies_at_once_is_an_error(run_dir: Path) -> None:
    proc = _bash("wilton_start broken bash -c 'echo boom >&2; exit 3'", run_dir)
    assert proc.returncode != 0
    assert "broken exited at once" in proc.stderr and "boom" in proc.stderr
    assert not (run_dir / "broken.pid").exists()


def test_wait_http_succeeds_when_ready_and_fails_with_a_message(run_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (run_dir / "www").mkdir()
    (run_dir / "www" / "healthz").write_text("ok")
    started = _bash(f"wilton_start web python3 -m http.server {port} --bind 127.0.0.1 --directory www", run_dir)
    assert started.returncode == 0, started.stderr
    ok = _bash(f"wilton_wait_http http://127.0.0.1:{port}/healthz 15 web", run_dir)
    assert ok.returncode == 0, ok.stderr
    missing = _bash(f"wilton_wait_http http://127.0.0.1:{port}/nope 1", run_dir)
    assert missing.returncode != 0 and "not ready after 1s" in missing.stderr
    assert _bash("wilton_stop web", run_dir).returncode == 0


def test_venv_console_script_missing_is_a_clear_error(run_dir: Path) -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "start_metrics_exporter.sh")], capture_output=True, text=True,
                          timeout=30, cwd=run_dir,
                          env={**os.environ, "WILTON_VENV": str(run_dir / "novenv"), "WILTON_RUN_DIR": str(run_dir)})
    assert proc.returncode != 0
    assert "wilton-exporter not found" in proc.stderr


def test_local_model_is_not_started_when_local_small_points_elsewhere(run_dir: Path) -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "start_local_model.sh")], capture_output=True, text=True,
                          timeout=30, cwd=run_dir,
                          env={**os.environ, "WILTON_RUN_DIR": str(run_dir), "WILTON_SKIP_OLLAMA_PROBE": "1",
                               "WILTON_LOCAL_BASE_URL": "http://10.0.0.5:8000/v1"})
    assert proc.returncode == 0, proc.stderr
    assert "points at http://10.0.0.5:8000/v1" in proc.stdout + proc.stderr
    assert not (run_dir / "local-model.pid").exists()


def test_progress_says_what_how_long_and_how_far_for_a_slow_command(run_dir: Path) -> None:
    """issue 18: up.sh printed nothing for the ~10 min llama-cpp-python compiles."""
    slow = ("bash -c 'echo Collecting llama-cpp-python; sleep 1.5; "
            "echo \"  Building wheel for llama-cpp-python (pyproject.toml): started\"; sleep 1.5; "
            "echo Successfully installed llama-cpp-python'")
    proc = _bash(f'wilton_progress "installing wilton-core[local]" "about 10 min" "$WILTON_LOG_DIR/install.log" {slow}',
                 run_dir, WILTON_PROGRESS_EVERY_S="0.4")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "installing wilton-core[local]: usually about 10 min; full output in" in err
    still = [line for line in err.splitlines() if "... still installing wilton-core[local]:" in line]
    assert len(still) >= 3  # a fresh line while it runs, never minutes of silence
    assert all("s so far" in line for line in still)
    assert any("(last: Collecting llama-cpp-python)" in line for line in still)
    assert any("(last: Building wheel for llama-cpp-python" in line for line in still)
    assert "installing wilton-core[local]: done in 0m" in err
    assert "Successfully installed" in (run_dir / "logs" / "install.log").read_text()  # the output is kept


def test_progress_reports_a_failure_with_the_end_of_the_log(run_dir: Path) -> None:
    proc = _bash('wilton_progress "building" "a moment" "$WILTON_LOG_DIR/b.log" '
                 "bash -c 'echo error: compiler not found >&2; exit 3' || echo rc=$?", run_dir)
    assert "rc=3" in proc.stdout
    assert "error: compiler not found" in proc.stderr and "building failed (exit 3)" in proc.stderr


def test_up_sh_installs_through_the_progress_function() -> None:
    up = (ROOT / "scripts" / "up.sh").read_text()
    assert "wilton_progress \"installing wilton-core[local,voice,embed]\"" in up
    assert "pip install -q --progress-bar off -e" not in up  # the long install always shows progress


def test_test_sh_installs_through_the_progress_function() -> None:
    text = (ROOT / "scripts" / "test.sh").read_text()
    assert 'wilton_progress "installing wilton-core[$extras]"' in text and "pip install -q -e" not in text


def test_up_sh_help_is_its_whole_header_and_nothing_else() -> None:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "up.sh"), "--help"], capture_output=True, text=True,
                         timeout=30).stdout
    assert out.splitlines()[-1].startswith("#   WILTON_CONFIG") and "set -euo" not in out
    assert "WILTON_INSIGHT_FIRST_DELAY_S" in out and "WILTON_PROGRESS_EVERY_S" in out
