"""prometheus/: promtool checks, alert annotations and runbook anchors, a test for every alert."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .conftest import (
    METRIC_TOKEN,
    PROM,
    ROOT,
    alert_rules,
    all_rules,
    exporter_sample_names,
    load_yaml,
    recording_rule_names,
)

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=PROM, capture_output=True, text=True, timeout=60)


@needs_promtool
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_check_config(config: str) -> None:
    proc = _promtool("check", "config", config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 rule files found" in proc.stdout


@needs_promtool
def test_promtool_check_rules() -> None:
    proc = _promtool("check", "rules", *sorted(str(p) for p in (PROM / "rules").glob("*.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_promtool_test_rules() -> None:
    tests = sorted(str(p) for p in (PROM / "tests").glob("*.yml"))
    assert tests
    proc = _promtool("test", "rules", *tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(tests)


def test_every_alert_has_annotations_and_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    # GitHub's anchor of "## WiltonPhiOffTarget" is #wiltonphiofftarget
    anchors = {h.strip().lower().replace(" ", "-") for h in re.findall(r"^## (.+)$", runbook, re.M)}
    alerts = alert_rules()
    assert len(alerts) >= 9
    for rule in alerts:
        ann = rule.get("annotations", {})
        assert ann.get("summary") and ann.get("description"), rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"info", "warning", "critical"}, rule["alert"]
        url = ann.get("runbook_url", "")
        assert url.startswith("docs/runbook.md#"), rule["alert"]
        assert url.split("#", 1)[1] in anchors, f"{rule['alert']}: no section for {url}"
        assert rule["alert"].lower() in anchors


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for f in (PROM / "tests").glob("*.yml"):
        for case in load_yaml(f)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - quiet == set(), "alerts never shown to stay quiet"


def test_rules_query_only_metrics_the_exporter_defines() -> None:
    defined = exporter_sample_names() | recording_rule_names()
    for rule in all_rules():
        for name in METRIC_TOKEN.findall(rule["expr"]):
            assert name in defined, f"{rule.get('alert') or rule.get('record')}: unknown metric {name}"


def test_local_and_compose_configs_agree() -> None:
    local = load_yaml(PROM / "prometheus.yml")
    compose = load_yaml(PROM / "prometheus.compose.yml")
    assert local["rule_files"] == compose["rule_files"] == ["rules/*.yml"]

    def jobs(cfg: dict) -> dict[str, str]:  # type: ignore[type-arg]
        return {j["job_name"]: j["static_configs"][0]["targets"][0].split(":")[1] for j in cfg["scrape_configs"]}

    assert jobs(local) == jobs(compose)
    assert jobs(local) == {"prometheus": "9090", "wilton-exporter": "8000", "wilton-router": "8080",
                           "wilton-coherence": "8001"}
