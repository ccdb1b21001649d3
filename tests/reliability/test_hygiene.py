"""Start-up hygiene of the four daemons, and a planted secret that must never come out anywhere.

Each bad start (bad TOML, unknown key, missing key, missing file, unreachable store, bad setting)
gives ONE readable message naming the problem and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from wilton_core.testing.procs import ManagedProcess, free_port

from ._bench import load

faults = load("faults")

BIN = Path(sys.executable).parent
DAEMONS = {
    "wilton-router": [],
    "wilton-coherence": [],
    "wilton-exporter": [],
    "wilton-insight": ["--once"],
}
GOOD = '[[models]]\nid = "m"\nprovider = "openai"\nmodel = "m"\ntier = "selfhost"\nis_local = true\n'
STORE_PW = "planted-store-pw-5c1e"
CASES = {
    "bad-toml": ('[[models]\nid = "m"\n', {}, "not valid TOML"),
    "unknown-key": (GOOD + "bogus_key = 1\n", {}, "'bogus_key': unknown key"),
    "missing-key": (GOOD.replace('model = "m"\n', ""), {}, "'model': required key is missing"),
    "missing-file": (None, {}, "config file not found"),
    "unreachable-store": (GOOD, {"WILTON_STORE_URL": f"postgresql://wilton:{STORE_PW}@127.0.0.1:1/x"},
                          "127.0.0.1"),
    "bad-setting": (GOOD, {"WILTON_LEDGER_FLUSH_S": "soon"}, "WILTON_LEDGER_FLUSH_S"),
}


def _run(daemon: str, case: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    text, env_extra, _ = CASES[case]
    work = tmp / f"{daemon}-{case}"
    work.mkdir()
    cfg = work / "wilton.toml"
    if text is not None:
        cfg.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WILTON_")}
    env.update({"WILTON_STORE_URL": f"sqlite:///{work / 'w.db'}", "WILTON_DATA_DIR": str(work / "data"),
                "WILTON_REPORTS_DIR": str(work / "reports"), "WILTON_COHERENCE_PORT": str(free_port()),
                "WILTON_ROUTER_PORT": str(free_port()), "WILTON_EXPORTER_PORT": str(free_port())})
    env.update(env_extra)
    return subprocess.run([str(BIN / daemon), "--config", str(cfg), *DAEMONS[daemon]], env=env, cwd=work,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hygiene")
    jobs = [(d, c) for d in DAEMONS for c in CASES]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda dc: _run(dc[0], dc[1], tmp), jobs))
    return dict(zip(jobs, results, strict=True))


@pytest.mark.e2e
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("daemon", list(DAEMONS))
def test_bad_start_is_one_readable_message_and_non_zero_exit(outcomes, daemon, case) -> None:
    p = outcomes[(daemon, case)]
    out = (p.stderr + p.stdout).strip()
    assert p.returncode != 0, out
    assert "Traceback" not in out
    lines = out.splitlines()
    assert lines and lines[0].startswith(f"{daemon}: "), out  # one message, named by its program
    assert len(lines) <= 3, out
    assert CASES[case][2] in out, out
    assert STORE_PW not in out


@pytest.mark.e2e
@pytest.mark.slow
def test_planted_secret_never_comes_out(tmp_path) -> None:
    key = faults.API_KEYS["FAULTS_OPENAI_KEY"]
    secrets = list(faults.API_KEYS.values())
    stack = faults.RouterStack(tmp_path, extra_env={"WILTON_LOG_LEVEL": "debug"}).start()
    outputs: dict[str, str] = {}
    try:
        # an upstream 401 that echoes the key back, as some providers do
        stack.script({"model": "api-a", "fail": [401] * 50, "error_message": f"Incorrect API key provided: {key}"},
                     {"model": "local-a", "status": 500}, {"model": "local-b", "status": 500})
        with httpx.Client(base_url=stack.url, timeout=30) as c:
            for model in ("api-a", "auto", "api"):
                for stream in (False, True):
                    r = c.post("/v1/chat/completions", json={"model": model, "stream": stream,
                                                             "messages": [{"role": "user", "content": "x"}]})
                    outputs[f"response {model} stream={stream} ({r.status_code})"] = r.text + str(r.headers)
            for path in ("/metrics", "/v1/models", "/readyz", "/healthz", "/openapi.json"):
                outputs[f"router {path}"] = c.get(path).text
        time.sleep(0.6)  # a ledger flush and a health publication
        port = free_port()
        exp = ManagedProcess.python_module("wilton_core.exporter.cli", "--port", str(port), "--config",
                                           str(stack.config_path), env=stack.env(), log=tmp_path / "exporter.log")
        exp.start(f"http://127.0.0.1:{port}/metrics", timeout=60)
        try:
            outputs["exporter /metrics"] = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            exp.stop()
        outputs["exporter log"] = (tmp_path / "exporter.log").read_text()
        # insight: its model is an OpenAI-compatible upstream that rejects the key and echoes it
        stack.script({"model": "insight-model", "fail": [401] * 10,
                      "error_message": f"Incorrect API key provided: {key}"})
        env = {**os.environ, **stack.env(), "OPENAI_API_KEY": key, "OPENAI_BASE_URL": stack.fake.url + "/v1",
               "WILTON_INSIGHT_OPENAI_MODEL": "insight-model", "WILTON_REPORTS_DIR": str(tmp_path / "reports")}
        p = subprocess.run([str(BIN / "wilton-insight"), "--once", "--model", "openai", "--config",
                            str(stack.config_path)], env=env, capture_output=True, text=True, timeout=120)
        outputs["insight output"] = p.stdout + p.stderr
        assert stack.fake.stats()["by_model"].get("insight-model", 0) >= 1  # it did call the upstream
    finally:
        stack.stop()
    outputs["router log"] = stack.log_text()
    reports = list((tmp_path / "reports").rglob("*"))
    assert any(f.is_file() for f in reports), p.stdout + p.stderr
    for f in reports:
        if f.is_file():
            outputs[f"report {f.name}"] = f.read_text(errors="replace")
    outputs["store file"] = (tmp_path / "wilton.db").read_bytes().decode("latin-1")
    for wal in tmp_path.glob("wilton.db-*"):
        outputs[f"store {wal.name}"] = wal.read_bytes().decode("latin-1")
    leaks = [name for name, text in outputs.items() for s in secrets if s in text]
    assert not leaks, leaks
    # the failures were real and visible, just without the key
    assert any("(503)" in k for k in outputs), list(outputs)
    assert "auth" in outputs["response api-a stream=False (503)"]
    assert any((k.startswith("report ") and "401" in v) or "auth" in v.lower() for k, v in outputs.items()
               if k.startswith("report "))
