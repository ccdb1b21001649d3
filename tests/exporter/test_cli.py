"""`wilton-exporter` as a real process: flags -> settings -> service, port 0, SIGTERM."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import wilton_core.store as store_pkg
from wilton_core.exporter.cli import main

EXE = shutil.which("wilton-exporter") or str(Path(sys.executable).parent / "wilton-exporter")


def test_bad_settings_exit_2_with_a_readable_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store-url", "mysql://db/x"]) == 2
    err = capsys.readouterr().err
    assert "WILTON_STORE_URL" in err and "sqlite:///" in err


def test_missing_config_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "--store-url", f"sqlite:///{tmp_path}/w.db"]) == 2
    assert "config file not found" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(store_pkg, "open_store"),
                    reason="wilton_core.store.open_store has not landed yet (store area)")
def test_serves_on_port_0_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [EXE, "--port", "0", "--store-url", f"sqlite:///{tmp_path}/wilton.db", "--api-budget-usd-per-hour", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert m, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = f"http://127.0.0.1:{m.group(1)}"
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        text = httpx.get(base + "/metrics", timeout=5).text
        assert "wilton_exporter_store_up 1.0" in text
        assert "wilton_api_spend_budget_usd_per_hour 2.0" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
