"""ExporterService on port 0 over a real store, read with a real HTTP client."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from wilton_core.exporter.families import ExportOptions
from wilton_core.exporter.service import ExporterService
from wilton_core.store.sqlite import SqliteStore

from .conftest import fill


def test_serves_metrics_and_healthz(store: SqliteStore) -> None:
    fill(store, 40)
    with ExporterService(store, ExportOptions(latency_targets={"llm": 2.0}), port=0) as svc:
        assert svc.port > 0
        r = httpx.get(svc.url + "/metrics", timeout=5)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        fams = {f.name: f for f in text_string_to_metric_families(r.text)}
        assert "wilton_requests" in fams and "wilton_phi_target" in fams
        h = httpx.get(svc.url + "/healthz", timeout=5)
        assert h.status_code == 200 and h.json()["status"] == "ok"
        assert httpx.get(svc.url + "/nope", timeout=5).status_code == 404
        om = httpx.get(svc.url + "/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=5)
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.rstrip().endswith("# EOF")


def test_stop_releases_the_port_and_can_restart(store: SqliteStore) -> None:
    svc = ExporterService(store, port=0)
    svc.start()
    url = svc.url
    svc.stop()
    try:
        httpx.get(url + "/healthz", timeout=1)
        raise AssertionError("still serving after stop()")
    except httpx.TransportError:
        pass
    svc.start()  # the collector was unregistered, so it registers again cleanly
    assert httpx.get(svc.url + "/healthz", timeout=5).status_code == 200
    svc.stop()
