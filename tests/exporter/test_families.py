"""Snapshot -> metric families, with no store: exact values through a real CollectorRegistry."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from wilton_core.exporter.families import ExportOptions, build_families, histogram_quantile
from wilton_core.exporter.snapshot import ModelStatusRow, Snapshot, WindowTotals
from wilton_core.store.base import (
    Aggregates,
    ControlState,
    FallbackAggRow,
    HistogramRow,
    LedgerAggRow,
)

INF = math.inf


class _Fixed(Collector):
    def __init__(self, snap: Snapshot, opts: ExportOptions) -> None:
        self.snap, self.opts = snap, opts

    def collect(self):  # type: ignore[no-untyped-def]
        return iter(build_families(self.snap, self.opts))


def _agg(tier: str, model: str, status: str = "ok", error: str = "", n: int = 1, **kw: float) -> LedgerAggRow:
    return LedgerAggRow(
        tier=tier, model_id=model, provider=kw.get("provider", "openai"), intent=kw.get("intent", "chat"),  # type: ignore[arg-type]
        status=status, error_class=error, requests=n, tokens_in=int(kw.get("tin", 0)),
        tokens_out=int(kw.get("tout", 0)), cost_usd=kw.get("cost", 0.0), latency_sum_s=kw.get("lat", 0.0),
        ttft_sum_s=0.0, ttft_count=0, fallbacks=0,
    )


def _registry(snap: Snapshot, opts: ExportOptions | None = None) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(_Fixed(snap, opts or ExportOptions(latency_targets={"llm": 2.0, "stt": 0.8})))
    return reg


def test_traffic_counters_sum_keys_and_split_errors() -> None:
    aggs = Aggregates(
        ledger=[
            _agg("selfhost", "local-small", n=30, tin=300, tout=900),
            _agg("frontier", "gpt-4o", n=8, tin=80, tout=160, cost=0.12, intent="code"),
            _agg("frontier", "gpt-4o", status="error", error="rate_limited", n=2, intent="code"),
            _agg("edge", "groq", intent="", n=1),
        ],
        histograms=[],
        fallbacks=[FallbackAggRow("gpt-4o", "rate_limited", 5), FallbackAggRow("gpt-4o", "unavailable", 1)],
    )
    reg = _registry(Snapshot(now=100.0, aggregates=aggs))
    g = reg.get_sample_value
    assert g("wilton_requests_total", {"tier": "selfhost", "model": "local-small", "provider": "openai",
                                       "intent": "chat", "status": "ok"}) == 30
    assert g("wilton_requests_total", {"tier": "frontier", "model": "gpt-4o", "provider": "openai",
                                       "intent": "code", "status": "error"}) == 2
    # a missing intent becomes a stable label value, never an empty one
    assert g("wilton_requests_total", {"tier": "edge", "model": "groq", "provider": "openai",
                                       "intent": "none", "status": "ok"}) == 1
    assert g("wilton_request_errors_total", {"tier": "frontier", "model": "gpt-4o", "provider": "openai",
                                             "error_class": "rate_limited"}) == 2
    assert g("wilton_request_errors_total", {"tier": "selfhost", "model": "local-small", "provider": "openai",
                                             "error_class": "unknown"}) is None
    assert g("wilton_tokens_total", {"tier": "selfhost", "model": "local-small", "direction": "out"}) == 900
    assert g("wilton_tokens_total", {"tier": "frontier", "model": "gpt-4o", "direction": "in"}) == 80
    assert g("wilton_cost_usd_total", {"tier": "frontier", "model": "gpt-4o"}) == pytest.approx(0.12)
    assert g("wilton_fallbacks_total", {"model": "gpt-4o", "reason": "unavailable"}) == 1
    # fallback_agg already holds the final failed attempt: rate-limit hits are not double counted
    assert g("wilton_rate_limit_hits_total", {"model": "gpt-4o"}) == 5


def test_histograms_pass_cumulative_buckets_and_p95_merges_models() -> None:
    h1 = HistogramRow("selfhost", "local-small", "latency", ((0.5, 90), (1.0, 100), (INF, 100)), 100, 30.0)
    h2 = HistogramRow("frontier", "gpt-4o", "latency", ((0.5, 0), (1.0, 0), (INF, 100)), 100, 500.0)
    t1 = HistogramRow("frontier", "gpt-4o", "ttft", ((0.5, 4), (1.0, 10), (INF, 10)), 10, 5.0)
    reg = _registry(Snapshot(now=0.0, aggregates=Aggregates([], [h1, h2, t1], [])))
    g = reg.get_sample_value
    assert g("wilton_request_latency_seconds_bucket", {"tier": "selfhost", "model": "local-small", "le": "0.5"}) == 90
    assert g("wilton_request_latency_seconds_bucket", {"tier": "frontier", "model": "gpt-4o", "le": "+Inf"}) == 100
    assert g("wilton_request_latency_seconds_count", {"tier": "frontier", "model": "gpt-4o"}) == 100
    assert g("wilton_request_latency_seconds_sum", {"tier": "frontier", "model": "gpt-4o"}) == 500.0
    assert g("wilton_request_ttft_seconds_bucket", {"tier": "frontier", "model": "gpt-4o", "le": "1.0"}) == 10
    # merged: 90 <= 0.5, 100 <= 1.0, 200 total: rank 190 is in +Inf -> the largest finite bound (60 s)
    assert g("wilton_stage_latency_p95_seconds", {"stage": "llm"}) == 60.0
    # every series carries the full standard set of bounds, so `sum by (le)` adds like with like
    assert g("wilton_request_latency_seconds_bucket", {"tier": "selfhost", "model": "local-small", "le": "30.0"}) == 100
    assert g("wilton_request_latency_seconds_bucket", {"tier": "frontier", "model": "gpt-4o", "le": "0.005"}) == 0
    assert g("wilton_latency_target_seconds", {"stage": "llm"}) == 2.0
    assert g("wilton_latency_target_seconds", {"stage": "stt"}) == 0.8


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        ([(0.5, 10), (1.0, 10), (INF, 10)], 0.95, 0.475),
        ([(1.0, 0), (5.0, 10), (INF, 10)], 0.95, 4.8),
        ([(1.0, 0), (INF, 0)], 0.95, None),
        ([], 0.5, None),
    ],
)
def test_histogram_quantile_matches_prometheus(buckets, q, expected) -> None:  # type: ignore[no-untyped-def]
    got = histogram_quantile(q, buckets)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_control_window_health_and_insight() -> None:
    snap = Snapshot(
        now=1000.0,
        window=WindowTotals(since=700, until=1001, local_requests=75, api_requests=25,
                            local_tokens=1000, api_tokens=3000, last_bucket_ts=999.0),
        control=ControlState(phi_target=0.8, threshold=0.62, bias=0.02, measured_phi=0.75, error=0.05,
                             updated_at=995.0, steps=42),
        router_health={
            "r1": {"ts": 999.5, "models": {
                "gpt-4o": {"healthy": False, "cooldown_until": 1012.5, "consecutive_failures": 3},
                "local-small": {"healthy": True, "cooldown_until": 0, "consecutive_failures": 0},
                "claude-sonnet": {"healthy": False, "configured": False, "cooldown_until": 0},
                "junk": "not a dict"},
                "ledger": {"pending": 12, "dropped": 0}},
        },
        model_status=[ModelStatusRow("gpt-4o", "failed", 812.0, 900.0)],
        insight={"ts": 950.0, "ok": True, "runs_ok": 4, "runs_failed": 1},
    )
    reg = _registry(snap, ExportOptions(window_s=300.0, api_budget_usd_per_hour=2.5))
    g = reg.get_sample_value
    assert g("wilton_phi_measured", {"basis": "requests"}) == 0.75
    assert g("wilton_phi_measured", {"basis": "tokens"}) == 0.25
    assert g("wilton_window_requests", {"locality": "api"}) == 25
    assert g("wilton_window_seconds") == 300.0
    assert g("wilton_ledger_last_bucket_timestamp_seconds") == 999.0
    assert g("wilton_phi_target") == 0.8
    assert g("wilton_controller_threshold") == 0.62
    assert g("wilton_control_error") == 0.05
    assert g("wilton_control_measured_phi") == 0.75
    assert g("wilton_control_steps_total") == 42
    assert g("wilton_control_updated_timestamp_seconds") == 995.0
    assert g("wilton_api_spend_budget_usd_per_hour") == 2.5
    assert g("wilton_model_healthy", {"replica": "r1", "model": "gpt-4o"}) == 0
    assert g("wilton_model_healthy", {"replica": "r1", "model": "local-small"}) == 1
    assert g("wilton_model_healthy", {"replica": "r1", "model": "junk"}) is None
    assert g("wilton_model_healthy", {"replica": "r1", "model": "claude-sonnet"}) is None
    assert g("wilton_model_cooldown_remaining_seconds", {"replica": "r1", "model": "gpt-4o"}) == 12.5
    assert g("wilton_model_cooldown_remaining_seconds", {"replica": "r1", "model": "local-small"}) == 0
    assert g("wilton_model_consecutive_failures", {"replica": "r1", "model": "gpt-4o"}) == 3
    assert g("wilton_router_health_timestamp_seconds", {"replica": "r1"}) == 999.5
    assert g("wilton_ledger_pending_records", {"replica": "r1"}) == 12
    assert g("wilton_model_test_status", {"model": "gpt-4o", "status": "failed"}) == 1
    assert g("wilton_model_test_latency_seconds", {"model": "gpt-4o"}) == pytest.approx(0.812)
    assert g("wilton_insight_runs_total", {"result": "ok"}) == 4
    assert g("wilton_insight_runs_total", {"result": "failed"}) == 1
    assert g("wilton_insight_last_success_timestamp_seconds") == 950.0


def test_empty_store_uses_config_defaults_and_omits_unknowns() -> None:
    reg = _registry(Snapshot(now=0.0), ExportOptions(phi_target_default=0.7))
    g = reg.get_sample_value
    assert g("wilton_phi_target") == 0.7
    assert g("wilton_controller_threshold") is None
    assert g("wilton_phi_measured", {"basis": "requests"}) is None
    assert g("wilton_insight_last_success_timestamp_seconds") is None
    assert g("wilton_api_spend_budget_usd_per_hour") is None
    assert g("wilton_insight_runs_total", {"result": "failed"}) == 0
    generate_latest(reg)  # the empty families must still render


def test_failed_insight_run_keeps_the_reported_last_success() -> None:
    snap = Snapshot(now=0.0, insight={"ts": 500.0, "ok": False, "runs_ok": 1, "runs_failed": 2,
                                      "last_success_ts": 100.0})
    g = _registry(snap).get_sample_value
    assert g("wilton_insight_last_run_timestamp_seconds") == 500.0
    assert g("wilton_insight_last_success_timestamp_seconds") == 100.0
    snap.insight = {"ts": 500.0, "ok": False, "runs_ok": 0, "runs_failed": 2}
    assert _registry(snap).get_sample_value("wilton_insight_last_success_timestamp_seconds") is None


def test_histograms_with_different_bounds_merge_into_a_correct_p95() -> None:
    # unsorted input and missing +Inf are normalised; merged counts use each list's own bounds
    a = HistogramRow("selfhost", "a", "latency", ((1.0, 10), (0.5, 10)), 10, 3.0)
    b = HistogramRow("edge", "b", "latency", ((5.0, 10), (INF, 10)), 10, 30.0)
    reg = _registry(Snapshot(now=0.0, aggregates=Aggregates([], [a, b], [])))
    g = reg.get_sample_value
    assert g("wilton_request_latency_seconds_bucket", {"tier": "selfhost", "model": "a", "le": "+Inf"}) == 10
    assert g("wilton_request_latency_seconds_count", {"tier": "selfhost", "model": "a"}) == 10
    # merged over the standard bounds: <=2.5: 10, <=5.0: 20 -> rank 19 lies in (2.5, 5.0]
    assert g("wilton_stage_latency_p95_seconds", {"stage": "llm"}) == pytest.approx(2.5 + 2.5 * 9 / 10)


def test_shadow_judging_counts_per_replica() -> None:
    shadow = {"sampled": 7, "judged": 5, "judge_unparsable": 1, "spend_usd": 0.042, "in_flight": 1,
              "budget_spent_usd": 0.03, "skipped": {"budget": 2, "local_only": 3, "made-up": 9},
              "failed": {"answer": 1, "judge": 0, "store": 0}}
    snap = Snapshot(now=1000.0, router_health={"r1": {"ts": 999.0, "models": {}, "shadow": shadow},
                                               "r2": {"ts": 999.0, "models": {}}})
    g = _registry(snap, ExportOptions()).get_sample_value
    assert g("wilton_shadow_sampled_total", {"replica": "r1"}) == 7
    assert g("wilton_shadow_judged_total", {"replica": "r1"}) == 5
    assert g("wilton_shadow_judge_unparsable_total", {"replica": "r1"}) == 1
    assert g("wilton_shadow_spend_usd_total", {"replica": "r1"}) == pytest.approx(0.042)
    assert g("wilton_shadow_skipped_total", {"replica": "r1", "reason": "local_only"}) == 3
    assert g("wilton_shadow_skipped_total", {"replica": "r1", "reason": "made-up"}) is None  # bounded labels
    assert g("wilton_shadow_failed_total", {"replica": "r1", "stage": "answer"}) == 1
    assert g("wilton_shadow_in_flight", {"replica": "r1"}) == 1
    assert g("wilton_shadow_hour_spend_usd", {"replica": "r1"}) == pytest.approx(0.03)
    assert g("wilton_shadow_sampled_total", {"replica": "r2"}) is None  # off there
