from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "prometheus"
DASHBOARDS = ROOT / "grafana" / "dashboards"

METRIC_TOKEN = re.compile(r"\bwilton[_:][A-Za-z0-9_:]*")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def recording_rule_names() -> set[str]:
    names: set[str] = set()
    for f in sorted((PROM / "rules").glob("*.yml")):
        for group in load_yaml(f)["groups"]:
            names.update(r["record"] for r in group["rules"] if "record" in r)
    return names


def alert_rules() -> list[dict[str, Any]]:
    out = []
    for f in sorted((PROM / "rules").glob("*.yml")):
        for group in load_yaml(f)["groups"]:
            out.extend(r for r in group["rules"] if "alert" in r)
    return out


def all_rules() -> list[dict[str, Any]]:
    out = []
    for f in sorted((PROM / "rules").glob("*.yml")):
        for group in load_yaml(f)["groups"]:
            out.extend(group["rules"])
    return out


def exporter_sample_names() -> set[str]:
    """Sample names the REAL collector defines, read from its families over a filled store."""
    import tempfile

    from prometheus_client import CollectorRegistry

    from wilton_core.config import LatencyTargets
    from wilton_core.exporter.collector import StoreCollector
    from wilton_core.exporter.families import ExportOptions
    from wilton_core.exporter.synthetic import seed_side_tables, synthetic_records
    from wilton_core.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as d:
        store = SqliteStore(Path(d) / "w.db")
        store.migrate()
        try:
            store.insert_ledger(synthetic_records(80, now=1_700_000_000.0))
            seed_side_tables(store, 1_700_000_000.0)
            reg = CollectorRegistry()
            reg.register(StoreCollector(store, ExportOptions(latency_targets=LatencyTargets().as_dict(),
                                                             api_budget_usd_per_hour=1.0)))
            names: set[str] = set()
            for fam in reg.collect():
                names.update(s.name for s in fam.samples)
                if fam.type == "counter":
                    names.add(fam.name + "_total")
                elif fam.type == "histogram":
                    names.update(fam.name + s for s in ("_bucket", "_sum", "_count"))
                else:
                    names.add(fam.name)
        finally:
            store.close()
    return names


def dashboard_panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out
