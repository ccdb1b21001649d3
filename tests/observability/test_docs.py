from __future__ import annotations

from wilton_core.exporter.catalogue import METRICS

from .conftest import ROOT, recording_rule_names


def test_metric_catalogue_documents_every_metric_and_rule() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for m in METRICS:
        name = m.name + ("_total" if m.type == "counter" else "")
        assert f"`{name}`" in doc, name
    for rule in recording_rule_names():
        assert f"`{rule}`" in doc, rule
