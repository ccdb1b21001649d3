"""The dashboard over REAL traffic: fake upstreams → real router → store ← real exporter and
coherence daemon; a real Prometheus scrapes the exporter and the router. Every panel query must
return data, and the dashboard's phi must be the one the daemon measured."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

from .conftest import DASHBOARDS, PROM, dashboard_panels
from .test_dashboard_e2e import _has_number, _query, _substitute

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus binary not installed (apt-get install prometheus)"),
]

CONFIG = """
[[models]]
id = "local-small"
provider = "openai"
model = "local-small"
base_url = "{local}/v1"
tier = "selfhost"
is_local = true
capability = "standard"
context_window = 32768

[[models]]
id = "edge-limited"
provider = "openai"
model = "edge-limited"
base_url = "{api}/v1"
api_key_env = "DASH_API_KEY"
tier = "edge"
is_local = false
capability = "standard"
context_window = 32768
input_cost_per_mtok = 0.1
output_cost_per_mtok = 0.4

[[models]]
id = "frontier"
provider = "anthropic"
model = "frontier"
base_url = "{api}"
api_key_env = "DASH_API_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
context_window = 128000
supports_vision = true
input_cost_per_mtok = 3.0
output_cost_per_mtok = 15.0

[[models]]
id = "broken-local"
provider = "ollama"
model = "broken-local"
base_url = "{local}"
tier = "selfhost"
is_local = true
capability = "basic"

[routing]
window_s = 30
cooldown_s = 0.5
"""

MASTER = "dashboard-master-key-0123456789"
PROMPTS = ["hi", "olá, tudo bem?", "bonjour !", "what is the capital of Peru?",
           "Prove that the square root of 2 is irrational, step by step.",
           "Write a Python function that merges two sorted lists and explain its complexity.",
           "Derive the closed form of sum k^2 and prove it by induction.",
           "Explique pourquoi la série harmonique diverge.", "¿Cuál es la capital de Chile?", "thanks"]


class Traffic(threading.Thread):
    """A steady mixed stream: auto chat, streams, and pinned requests to a model that is down."""

    def __init__(self, base: str, team_key: str) -> None:
        super().__init__(daemon=True)
        self.base, self.stop, self.sent, self.errors = base, threading.Event(), 0, []
        self.team_key = team_key

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30, headers={"authorization": f"Bearer {MASTER}"}) as c:
            i = 0
            deadline = time.monotonic() + 240
            while not self.stop.is_set() and time.monotonic() < deadline and i < 20000:
                body: dict = {"messages": [{"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} #{i}"}],
                              "max_tokens": 16}
                if i % 7 == 0:
                    body["model"] = "broken-local"  # always fails: errors by model and class
                if i % 5 == 0:
                    body["stream"] = True
                headers = {}
                if i % 3 == 1:  # the Keys row: a virtual key's traffic, and local-only requests
                    headers["authorization"] = f"Bearer {self.team_key}"
                elif i % 3 == 2:
                    headers["x-wilton-privacy"] = "local-only"
                r = c.post("/v1/chat/completions", json=body, headers=headers)
                if r.status_code != 200 and body.get("model") != "broken-local":
                    self.errors.append((r.status_code, r.text[:200]))
                self.sent += 1
                i += 1
                time.sleep(0.01)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict]:
    local = FakeUpstream(models=["local-small", "broken-local"], name="local").start()
    api = FakeUpstream(models=["edge-limited", "frontier"], name="api", api_key="dash-secret").start()
    local.script("broken-local", status=500)
    # the edge model answers 429 with a short Retry-After: rate-limit hits and fallbacks keep flowing
    api.script("edge-limited", status=429, retry_after=0.5)
    cfg = tmp_path / "wilton.toml"
    cfg.write_text(CONFIG.format(local=local.url, api=api.url))
    env = {"WILTON_CONFIG": str(cfg), "WILTON_STORE_URL": f"sqlite:///{tmp_path / 'wilton.db'}",
           "WILTON_DATA_DIR": str(tmp_path / "data"), "DASH_API_KEY": "dash-secret",
           "WILTON_LEDGER_FLUSH_S": "0.1", "WILTON_ROUTER_URL": "", "WILTON_MASTER_KEY": MASTER,
           "WILTON_ROUTER_API_KEY": MASTER}
    from wilton_core.access.keys import KeyRepo, KeySpec
    from wilton_core.store import open_store

    store = open_store(env["WILTON_STORE_URL"])
    store.migrate()
    _, team_key = KeyRepo(store).create(KeySpec("team-a", budget_usd=100.0, budget_period="month"))
    store.close()
    rport, cport, eport, pport = free_port(), free_port(), free_port(), free_port()
    procs: list[ManagedProcess] = []
    prom = None
    traffic = None
    try:
        procs.append(ManagedProcess.python_module(
            "wilton_core.coherence.cli", "--interval", "1", "--port", str(cport),
            env={**env, "WILTON_ADMIN_PASSWORD": "dash-admin"}, log=tmp_path / "coherence.log",
        ).start(f"http://127.0.0.1:{cport}/healthz", timeout=60))
        procs.append(ManagedProcess.python_module(
            "wilton_core.router.cli", "--port", str(rport), env=env, log=tmp_path / "router.log",
        ).start(f"http://127.0.0.1:{rport}/readyz", timeout=60))
        router = f"http://127.0.0.1:{rport}"
        # one insight run through the router, so the report-age panel has a last success
        insight = subprocess.run(
            [sys.executable, "-m", "wilton_core.insight.cli", "--once", "--model", "local",
             "--reports-dir", str(tmp_path / "reports")],
            env={**__import__("os").environ, **env, "WILTON_ROUTER_URL": router}, capture_output=True,
            text=True, timeout=120)
        assert insight.returncode == 0, insight.stdout + insight.stderr
        procs.append(ManagedProcess.python_module(
            "wilton_core.exporter.cli", "--port", str(eport), "--api-budget-usd-per-hour", "5", env=env,
            log=tmp_path / "exporter.log",
        ).start(f"http://127.0.0.1:{eport}/healthz", timeout=60))
        traffic = Traffic(router, team_key)
        traffic.start()
        prom_cfg = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in sorted((PROM / "rules").glob("*.yml"))],
            "scrape_configs": [
                {"job_name": "wilton-exporter", "static_configs": [{"targets": [f"127.0.0.1:{eport}"]}]},
                {"job_name": "wilton-router", "static_configs": [{"targets": [f"127.0.0.1:{rport}"]}]},
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg))
        log = (tmp_path / "prometheus.log").open("w")
        prom = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{pport}",
             "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
        yield {"prom": f"http://127.0.0.1:{pport}", "router": router, "traffic": traffic,
               "exporter": f"http://127.0.0.1:{eport}",
               "coherence": f"http://127.0.0.1:{cport}"}
    finally:
        if traffic is not None:
            traffic.stop.set()
            traffic.join(timeout=30)
        if prom is not None:
            prom.terminate()
            try:
                prom.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prom.kill()
        for p in reversed(procs):
            p.stop()
        local.stop()
        api.stop()


def test_every_panel_has_data_from_real_router_traffic(live: dict) -> None:
    prom = live["prom"]
    dash = json.loads((DASHBOARDS / "wiltonos-quantum-balance.json").read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard_panels(dash) for t in p.get("targets", [])]
    with httpx.Client(timeout=5) as client:
        deadline = time.monotonic() + 90
        missing = queries
        while time.monotonic() < deadline:
            try:
                if client.get(f"{prom}/-/ready").status_code != 200:
                    time.sleep(0.5)
                    continue
                res = _query(client, prom, 'count_over_time(up{job="wilton-exporter"}[1m])')
                if res and float(res[0]["value"][1]) >= 12:
                    missing = [(t, e) for t, e in queries if not _has_number(_query(client, prom, _substitute(e)))]
                    if not missing:
                        break
            except httpx.TransportError:
                pass
            time.sleep(1.0)
        exported = [x for x in httpx.get(live["exporter"] + "/metrics").text.splitlines()
                    if "insight" in x or "model_test" in x]
        assert not missing, f"panel queries without data: {missing}; exporter: {exported}"
        assert not live["traffic"].errors, live["traffic"].errors[:5]
        # the router's own overhead histogram is scraped too
        assert _has_number(_query(client, prom, "wilton_router_overhead_seconds_count"))
        up = {s["metric"]["job"]: float(s["value"][1]) for s in _query(client, prom, "up")}
        assert up == {"wilton-exporter": 1.0, "wilton-router": 1.0}
