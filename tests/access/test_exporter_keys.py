"""Per-key families in the exporter: spend, requests, tokens, budgets and local-only counts."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from wilton_core.access.keys import KeyRepo, KeySpec
from wilton_core.exporter.collector import StoreCollector
from wilton_core.exporter.families import ExportOptions
from wilton_core.types import LedgerRecord


def _rec(ts: float, key_id: str, cost: float, *, refused: str | None = None, local_only: bool = False,
         tokens: int = 10) -> LedgerRecord:
    return LedgerRecord(ts=ts, request_id=f"r{ts}-{key_id}", model_id="" if refused else "api-x",
                        tier="" if refused else "frontier", is_local=False, provider="", cost_usd=cost,
                        tokens_in=0 if refused else tokens, key_id=key_id, local_only=local_only,
                        status="error" if refused else "ok", error_class=refused,
                        http_status=429 if refused else 200)


def test_key_families(store) -> None:
    now = time.time()
    repo = KeyRepo(store)
    a, _ = repo.create(KeySpec("team-a", budget_usd=5.0, budget_period="month"))
    b, _ = repo.create(KeySpec("private", local_only=True))
    store.insert_ledger([
        _rec(now - 1, a.id, 0.5), _rec(now - 2, a.id, 0.25), _rec(now - 3, a.id, 0.0, refused="insufficient_quota"),
        _rec(now - 4, b.id, 0.0, local_only=True), _rec(now - 5, "", 0.0, local_only=True),
        _rec(now - 6, "", 1.0),  # neither a key nor local-only: not per-key data
    ])
    reg = CollectorRegistry()
    reg.register(StoreCollector(store, ExportOptions(), clock=lambda: now))
    g = reg.get_sample_value
    assert g("wilton_key_spend_usd_total", {"key_name": "team-a"}) == pytest.approx(0.75)
    assert g("wilton_key_requests_total", {"key_name": "team-a", "outcome": "admitted"}) == 2
    assert g("wilton_key_requests_total", {"key_name": "team-a", "outcome": "refused"}) == 1
    assert g("wilton_key_tokens_total", {"key_name": "team-a"}) == 20
    assert g("wilton_key_budget_usd", {"key_name": "team-a", "period": "month"}) == 5.0
    assert g("wilton_key_period_spend_usd", {"key_name": "team-a"}) == pytest.approx(0.75)
    assert g("wilton_key_budget_usd", {"key_name": "private", "period": "total"}) is None
    assert g("wilton_local_only_requests_total", {"key_name": "private"}) == 1
    assert g("wilton_local_only_requests_total", {"key_name": "(none)"}) == 1
    names = {s.labels.get("key_name") for m in reg.collect() for s in m.samples if "key_name" in s.labels}
    assert names == {"team-a", "private", "(none)"}  # names, never hashes or ids
