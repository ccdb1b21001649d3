"""grafana/: provisioning files and the dashboard, checked against the real exporter's metrics."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import (
    DASHBOARDS,
    METRIC_TOKEN,
    ROOT,
    dashboard_panels,
    exporter_sample_names,
    load_yaml,
    recording_rule_names,
)

DASH_FILE = DASHBOARDS / "wiltonos-quantum-balance.json"


def _dash() -> dict:  # type: ignore[type-arg]
    return json.loads(DASH_FILE.read_text(encoding="utf-8"))


def test_provisioning_points_at_prometheus_and_the_dashboards_dir() -> None:
    ds = load_yaml(ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "wilton-prometheus"
    prov = load_yaml(ROOT / "grafana" / "provisioning" / "dashboards" / "wilton.yml")
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_dashboard_identity_and_panels_parse() -> None:
    dash = _dash()
    assert dash["uid"] == "wiltonos-quantum-balance"
    assert dash["title"] == "WiltonOS Quantum Balance"
    panels = [p for p in dashboard_panels(dash) if p["type"] != "row"]
    assert len(panels) >= 12
    ids = [p["id"] for p in dashboard_panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels:
        assert p["title"] and p["targets"], p
        assert p["datasource"]["uid"] == "wilton-prometheus", p["title"]
        pos = p["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
    titles = " ".join(p["title"].lower() for p in panels)
    for needed in ("phi now", "phi history", "requests by tier", "tokens by tier", "mean latency",
                   "p95 latency", "frontier cost", "fallbacks", "errors", "provider health",
                   "controller threshold"):
        assert needed in titles, needed


def test_every_query_names_only_metrics_the_exporter_defines() -> None:
    defined = exporter_sample_names() | recording_rule_names()
    used: set[str] = set()
    for p in dashboard_panels(_dash()):
        for t in p.get("targets", []):
            for name in METRIC_TOKEN.findall(t["expr"]):
                used.add(name)
                assert name in defined, f"panel '{p['title']}' queries unknown metric {name}"
    assert {"wilton_phi_measured", "wilton_phi_target", "wilton_requests_total"} <= used


def test_the_check_catches_a_misspelt_metric(tmp_path: Path) -> None:
    defined = exporter_sample_names()
    assert METRIC_TOKEN.findall("sum(rate(wilton_request_total[5m]))") == ["wilton_request_total"]
    assert "wilton_request_total" not in defined
