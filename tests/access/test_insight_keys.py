"""The insight report's per-key section, from a real store."""

from __future__ import annotations

import pytest

from wilton_core.access.insight import window_key_spend
from wilton_core.access.keys import KeyRepo, KeySpec
from wilton_core.insight.report import _numbers_section
from wilton_core.types import LedgerRecord


def _rec(ts: float, key_id: str, cost: float, **kw: object) -> LedgerRecord:
    fields: dict[str, object] = dict(ts=ts, request_id=f"r{ts}{key_id}", model_id="api-x", tier="frontier",
                                     is_local=False, provider="openai", tokens_in=10, tokens_out=10, cost_usd=cost,
                                     key_id=key_id)
    return LedgerRecord(**{**fields, **kw})  # type: ignore[arg-type]


def test_window_key_spend(store) -> None:
    repo = KeyRepo(store)
    a, _ = repo.create(KeySpec("team-a", budget_usd=10.0, budget_period="month"))
    b, _ = repo.create(KeySpec("private", local_only=True))
    store.insert_ledger([
        _rec(100.0, a.id, 0.5), _rec(101.0, a.id, 0.25),
        _rec(102.0, a.id, 0.0, status="error", error_class="rate_limit_exceeded", http_status=429),
        _rec(103.0, b.id, 0.0, local_only=True, is_local=True),
        _rec(50.0, a.id, 9.0),        # before the window
        _rec(104.0, "", 3.0),          # no key
    ])
    keys = window_key_spend(store, 100.0, 200.0)
    assert [k.name for k in keys] == ["team-a", "private"]
    ka, kb = keys
    assert ka.requests == 3 and ka.refused == 1 and ka.cost_usd == pytest.approx(0.75) and ka.tokens == 60
    assert ka.budget_usd == 10.0 and ka.budget_period == "month"
    assert kb.local_only == 1 and kb.cost_usd == 0.0 and kb.budget_usd is None
    assert window_key_spend(store, 300.0, 400.0) == []


def test_report_renders_the_keys_table() -> None:
    from insight.ledger_oracle import LedgerColumns, compute_stats  # tests/insight: the in-memory oracle

    from wilton_core.insight.stats import ControlColumns, KeySpend

    stats = compute_stats(LedgerColumns.empty(), ControlColumns.from_rows([]), since=0.0, until=3600.0,
                          phi_target=0.75, latency_target_s=2.0)
    stats.keys = [KeySpend("team-a", 3, 1, 0, 60, 0.75, 10.0, "month")]
    text = "\n".join(_numbers_section(stats.to_dict()))
    assert "### Client keys" in text and "| team-a | 3 | 1 | 0 | 60 | $0.7500 | $10.00 / month |" in text
