"""A REAL Prometheus scraping a REAL exporter over a store that keeps receiving ledger batches;
every dashboard query (and every recording rule) must return data through the HTTP API."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from wilton_core.config import LatencyTargets
from wilton_core.exporter.families import ExportOptions
from wilton_core.exporter.service import ExporterService
from wilton_core.exporter.synthetic import seed_side_tables, synthetic_records
from wilton_core.store.sqlite import SqliteStore
from wilton_core.testing.procs import free_port

from .conftest import DASHBOARDS, PROM, dashboard_panels, recording_rule_names

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus binary not installed (apt-get install prometheus)"),
]


def _substitute(expr: str) -> str:
    # what Grafana would send for a short range at a 1 s scrape interval
    return expr.replace("$__rate_interval", "10s").replace("$__range", "1h").replace("$__interval", "2s")


class _Traffic(threading.Thread):
    """Keeps writing small ledger batches so rates are non-zero, like a live router."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(daemon=True)
        self.store, self.stop = store, threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        i = 10_000
        try:
            while not self.stop.wait(0.25):
                self.store.insert_ledger(synthetic_records(8, time.time(), start=i, spacing_s=0.01))
                i += 8
        except BaseException as e:  # surfaced by the test, not swallowed
            self.error = e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[str]:
    store = SqliteStore(tmp_path / "wilton.db")
    store.migrate()
    now = time.time()
    store.insert_ledger(synthetic_records(2000, now))
    seed_side_tables(store, now)
    traffic = _Traffic(store)
    exporter = ExporterService(
        store, ExportOptions(latency_targets=LatencyTargets().as_dict(), api_budget_usd_per_hour=5.0), port=0
    )
    exporter.start()
    traffic.start()
    port = free_port()
    cfg = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted((PROM / "rules").glob("*.yml"))],
        "scrape_configs": [{"job_name": "wilton-exporter",
                            "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
    }
    cfg_path = tmp_path / "prometheus.yml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={cfg_path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
        assert traffic.error is None, traffic.error
    finally:
        traffic.stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        traffic.join(timeout=5)
        exporter.stop()
        store.close()


def _query(client: httpx.Client, base: str, expr: str) -> list[dict[str, Any]]:
    r = client.get(f"{base}/api/v1/query", params={"query": expr})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def _has_number(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(s["value"][1])) for s in result)


def test_every_panel_query_returns_data_from_a_real_prometheus(stack: str) -> None:
    dash = json.loads((DASHBOARDS / "wiltonos-quantum-balance.json").read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard_panels(dash) for t in p.get("targets", [])]
    with httpx.Client(timeout=5) as client:
        deadline = time.monotonic() + 60
        while True:  # ready, and at least 8 scrapes: enough samples for rate() over 10 s
            try:
                # /-/ready first: while the TSDB starts, the API answers 503 in plain text
                if client.get(f"{stack}/-/ready").status_code == 200:
                    res = _query(client, stack, 'count_over_time(up{job="wilton-exporter"}[1m])')
                    if res and float(res[0]["value"][1]) >= 8:
                        break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus never scraped the exporter 8 times"
            time.sleep(0.5)
        up = _query(client, stack, 'up{job="wilton-exporter"}')
        assert float(up[0]["value"][1]) == 1

        missing = [(title, expr) for title, expr in queries if not _has_number(_query(client, stack, _substitute(expr)))]
        assert not missing, f"panel queries without data: {missing}"

        # the recording rules the alerts use are evaluated too (every second here; give them a few)
        deadline = time.monotonic() + 20
        while True:
            rules_without_data = [r for r in sorted(recording_rule_names())
                                  if not _has_number(_query(client, stack, r))]
            if not rules_without_data or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not rules_without_data, rules_without_data

        # the live traffic is 3:1, so the dashboard's phi and share are the real numbers
        phi = float(_query(client, stack, 'wilton_phi_measured{basis="requests"}')[0]["value"][1])
        assert phi == pytest.approx(0.75, abs=0.02)
        shares = {s["metric"]["tier"]: float(s["value"][1]) for s in _query(client, stack, "wilton:request_share:ratio5m")}
        assert shares["selfhost"] == pytest.approx(0.75, abs=0.05)
