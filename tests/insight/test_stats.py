"""Known answers for every statistic on small synthetic ledgers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wilton_core.insight.stats import (
    ControlColumns,
    WindowAggregates,
    controller_activity,
    latency_by_model,
    minute_series,
    phi_trajectory,
    provider_health,
    rate_limit_episodes,
    rolling_phi,
    rolling_zscore_anomalies,
    tier_shares,
    time_off_target,
    trajectory_bucket_s,
)

from .ledger_oracle import LEDGER_COLUMNS, LedgerColumns, aggregate_ledger, compute_stats, costliest_requests

T0 = 1_700_000_000.0


def ledger(rows: list[dict[str, object]]) -> LedgerColumns:
    defaults: dict[str, object] = dict(
        request_id="r", model_id="local-small", tier="selfhost", is_local=True, provider="ollama",
        latency_s=0.5, tokens_in=10, tokens_out=10, cost_usd=0.0, status="ok", error_class=None,
        fallbacks=0,
    )
    full = [{**defaults, **r} for r in rows]
    return LedgerColumns.from_mapping({c: [r[c] for r in full] for c in LEDGER_COLUMNS})


def agg(led: LedgerColumns, since: float = T0, until: float = T0 + 3600, target: float = 2.0) -> WindowAggregates:
    return aggregate_ledger(led, since, until, latency_target_s=target)


def test_columns_are_sorted_by_time_and_nulls_become_nan() -> None:
    led = ledger([{"ts": T0 + 5, "request_id": "b", "latency_s": None}, {"ts": T0, "request_id": "a"}])
    assert led.request_id.tolist() == ["a", "b"]
    assert math.isnan(led.latency_s[1])
    assert len(LedgerColumns.empty()) == 0


def test_minute_series_sums_every_group_of_a_minute() -> None:
    led = ledger([
        {"ts": T0, "is_local": True}, {"ts": T0 + 10, "is_local": False, "status": "error"},
        {"ts": T0 + 59, "model_id": "other", "latency_s": 1.5}, {"ts": T0 + 60},
        {"ts": T0 + 185, "status": "error"}, {"ts": T0 + 240},   # the last one is outside the window
    ])
    a = agg(led, T0, T0 + 240)
    assert a.rows == 5 and a.minutes == 4
    s = minute_series(a)
    assert s["requests"].tolist() == [3, 1, 0, 1]
    assert s["local"].tolist() == [2, 1, 0, 1] and s["errors"].tolist() == [1, 0, 0, 1]
    assert s["ok_latency"].tolist() == [2, 1, 0, 0] and s["ok_latency_sum_s"][0] == pytest.approx(2.0)
    assert trajectory_bucket_s(T0, T0 + 5400, 24) == 240.0   # 225 s rounded up to whole minutes


def test_phi_trajectory_requests_and_tokens_basis() -> None:
    led = ledger([
        {"ts": T0 + 1, "is_local": True, "tokens_in": 10, "tokens_out": 0},
        {"ts": T0 + 2, "is_local": True, "tokens_in": 10, "tokens_out": 0},
        {"ts": T0 + 3, "is_local": True, "tokens_in": 10, "tokens_out": 0},
        {"ts": T0 + 4, "is_local": False, "tokens_in": 70, "tokens_out": 0},
    ])
    by_req = phi_trajectory(agg(led, T0, T0 + 120), 60)
    assert by_req[0].phi == 0.75 and by_req[0].requests == 4
    assert by_req[1].phi is None and by_req[1].requests == 0
    assert phi_trajectory(agg(led, T0, T0 + 60), 60, basis="tokens")[0].phi == pytest.approx(0.3)
    two_minutes = phi_trajectory(agg(led, T0, T0 + 180), 120)
    assert [(p.start - T0, p.requests) for p in two_minutes] == [(0, 4), (120, 0)]


def test_time_off_target_is_a_step_function() -> None:
    ts = np.array([0.0, 100.0, 200.0, 300.0])
    phi = np.array([0.75, 0.70, np.nan, 0.76])
    off, observed = time_off_target(ts, phi, 0.75, until=400.0)
    # 0.70 is off for 100 s; NaN is unobserved; 0.76 is within 0.02 for the last 100 s
    assert (off, observed) == (100.0, 300.0)
    assert time_off_target(np.array([]), np.array([]), 0.75, 10.0) == (0.0, 0.0)


def test_controller_activity() -> None:
    ctl = ControlColumns.from_rows([
        (T0 + 10, 0.75, 0.70, 0.55, -0.05),
        (T0, 0.75, None, 0.50, None),
        (T0 + 20, 0.75, 0.80, 0.45, 0.05),
    ])
    act = controller_activity(ctl)
    assert act.steps == 3
    assert (act.threshold_min, act.threshold_max, act.threshold_last) == (0.45, 0.55, 0.45)
    assert act.mean_abs_error == pytest.approx(0.05)
    assert controller_activity(ControlColumns.from_rows([])).steps == 0


def test_tier_shares() -> None:
    led = ledger([
        {"ts": T0, "tier": "selfhost", "tokens_in": 50, "tokens_out": 50, "cost_usd": 0.0},
        {"ts": T0, "tier": "selfhost", "tokens_in": 50, "tokens_out": 50, "cost_usd": 0.0},
        {"ts": T0, "tier": "selfhost", "tokens_in": 50, "tokens_out": 50, "cost_usd": 0.0},
        {"ts": T0, "tier": "frontier", "tokens_in": 100, "tokens_out": 0, "cost_usd": 0.02},
    ])
    shares = {s.tier: s for s in tier_shares(agg(led))}
    assert shares["selfhost"].requests_share == 0.75
    assert shares["selfhost"].tokens_share == 0.75
    assert shares["frontier"].cost_share == 1.0 and shares["frontier"].cost_usd == 0.02


def test_latency_percentiles_per_model_ignore_failures() -> None:
    rows = [{"ts": T0 + i, "model_id": "m", "latency_s": float(i + 1)} for i in range(100)]
    rows.append({"ts": T0, "model_id": "m", "latency_s": 999.0, "status": "error"})
    (lat,) = latency_by_model(agg(ledger(rows), target=2.0))
    assert lat.requests == 100
    assert lat.p50_s == pytest.approx(50.5)
    assert lat.p95_s == pytest.approx(95.05)
    assert lat.over_target_share == pytest.approx(0.98)
    assert not lat.meets_target


def test_provider_error_and_fallback_rates() -> None:
    led = ledger([
        {"ts": T0, "provider": "gemini", "status": "error", "error_class": "rate_limited"},
        {"ts": T0, "provider": "gemini", "status": "error", "error_class": "unavailable"},
        {"ts": T0, "provider": "gemini", "fallbacks": 1},
        {"ts": T0, "provider": "gemini"},
        {"ts": T0, "provider": "ollama"},
    ])
    health = {h.provider: h for h in provider_health(agg(led))}
    g = health["gemini"]
    assert (g.requests, g.errors, g.error_rate) == (4, 2, 0.5)
    assert (g.fallback_requests, g.fallback_rate) == (1, 0.25)
    assert g.error_classes == {"rate_limited": 1, "unavailable": 1}
    assert health["ollama"].error_rate == 0.0


def test_rate_limit_episodes_split_on_success_and_gap() -> None:
    rl = {"provider": "openai", "status": "error", "error_class": "rate_limited"}
    led = ledger([
        {"ts": T0 + 0, **rl}, {"ts": T0 + 70, **rl}, {"ts": T0 + 140, **rl},   # three minutes in a row
        {"ts": T0 + 150, "provider": "openai"},                 # a success after them ends the run
        {"ts": T0 + 155, "provider": "gemini"},                 # another provider: irrelevant
        {"ts": T0 + 200, **rl},
        {"ts": T0 + 250, "provider": "openai"},                 # a success in a later minute ends it
        {"ts": T0 + 310, **rl}, {"ts": T0 + 320, "provider": "openai"},
        {"ts": T0 + 330, **rl},                                 # same minute: interleaving does not split
        {"ts": T0 + 1000, **rl},                                # > 300 s later: a new episode
        {"ts": T0 + 15, "provider": "gemini", "status": "error", "error_class": "rate_limited"},
    ])
    eps = rate_limit_episodes(agg(led))
    got = [(e.provider, e.start - T0, e.end - T0, e.count) for e in eps]
    assert got == [
        ("openai", 0, 140, 3), ("gemini", 15, 15, 1), ("openai", 200, 200, 1), ("openai", 310, 330, 2),
        ("openai", 1000, 1000, 1),
    ]
    assert eps[0].duration_s == 140
    # a success in the same minute but before the first rate limit also ends the previous run
    led2 = ledger([{"ts": T0 + 50, **rl}, {"ts": T0 + 61, "provider": "openai"}, {"ts": T0 + 62, **rl}])
    assert [(e.start - T0, e.count) for e in rate_limit_episodes(agg(led2))] == [(50, 1), (62, 1)]


def test_costliest_requests_ordered_and_capped() -> None:
    led = ledger([
        {"ts": T0, "request_id": "cheap", "cost_usd": 0.001},
        {"ts": T0, "request_id": "free", "cost_usd": 0.0},
        {"ts": T0, "request_id": "big", "cost_usd": 0.05, "tokens_in": 900},
        {"ts": T0, "request_id": "tie-more-tokens", "cost_usd": 0.01, "tokens_in": 500},
        {"ts": T0, "request_id": "tie", "cost_usd": 0.01},
    ])
    assert [c.request_id for c in costliest_requests(led, 3)] == ["big", "tie-more-tokens", "tie"]
    assert [c.request_id for c in costliest_requests(led, 10)][-1] == "cheap"   # free ones left out
    assert costliest_requests(led, 0) == []


def test_rolling_zscore_finds_the_shift_and_only_it() -> None:
    rng = np.random.default_rng(7)
    values = 0.75 + rng.normal(0, 0.01, 60)
    values[45] = 0.30
    values[20] = np.nan  # an empty minute is skipped, not an anomaly
    starts = np.arange(60, dtype=np.float64) * 60
    found = rolling_zscore_anomalies("phi", starts, values, threshold=4.0)
    assert [a.ts for a in found] == [45 * 60]
    assert found[0].zscore < -4 and found[0].baseline == pytest.approx(0.75, abs=0.01)
    flat = np.full(20, 1.0)
    flat[15] = 2.0
    assert [a.ts for a in rolling_zscore_anomalies("x", starts[:20], flat)] == [15 * 60]


def test_compute_stats_on_a_synthetic_hour() -> None:
    # 60 minutes, 4 requests a minute: 3 local + 1 API, except minutes 40-44 where the
    # API model is rate limited and everything runs locally
    rows: list[dict[str, object]] = []
    for minute in range(60):
        base = T0 + minute * 60
        for k in range(3):
            rows.append({"ts": base + k, "request_id": f"l{minute}-{k}", "latency_s": 0.4})
        if 40 <= minute < 45:
            rows.append({"ts": base + 5, "request_id": f"a{minute}", "model_id": "gpt-4o", "tier": "frontier",
                         "is_local": True, "provider": "openai", "status": "error",
                         "error_class": "rate_limited", "latency_s": 0.1})
        else:
            rows.append({"ts": base + 5, "request_id": f"a{minute}", "model_id": "gpt-4o", "tier": "frontier",
                         "is_local": False, "provider": "openai", "latency_s": 3.0, "cost_usd": 0.01 + minute / 1e4})
    ctl = ControlColumns.from_rows([(T0 + m * 60, 0.75, 0.75 if m < 40 else 0.9, 0.5, 0.0) for m in range(60)])
    st = compute_stats(ledger(rows), ctl, since=T0, until=T0 + 3600, phi_target=0.75,
                       latency_target_s=2.0, max_tasks=2)
    assert st.totals.requests == 240 and st.totals.errors == 5
    assert st.phi.source == "control_history"
    assert st.phi.off_target_s == 20 * 60 and st.phi.observed_s == 3600
    assert [c.request_id for c in st.costliest] == ["a59", "a58"]
    (ep,) = st.rate_limit_episodes
    assert (ep.start, ep.end, ep.count) == (T0 + 40 * 60 + 5, T0 + 44 * 60 + 5, 5)
    lat = {m.model_id: m for m in st.latency}
    assert lat["gpt-4o"].p95_s == 3.0 and not lat["gpt-4o"].meets_target
    assert lat["local-small"].meets_target
    metrics = {(a.metric, a.ts) for a in st.anomalies}
    assert ("error_rate", T0 + 40 * 60) in metrics
    assert ("phi", T0 + 40 * 60) in metrics
    d = st.to_dict()
    assert d["latency"][0]["meets_target"] in (True, False) and d["rate_limit_episodes"][0]["duration_s"] == 240


def test_compute_stats_without_control_history_uses_ledger_minutes() -> None:
    rows: list[dict[str, object]] = [{"ts": T0 + m * 60, "is_local": m % 2 == 0} for m in range(10)]
    st = compute_stats(ledger(rows), ControlColumns.from_rows([]), since=T0, until=T0 + 600,
                       phi_target=0.75, latency_target_s=2.0)
    assert st.phi.source == "ledger" and st.notes
    assert st.phi.off_target_s == 600 and st.phi.off_target_share == 1.0
    empty = compute_stats(LedgerColumns.empty(), ControlColumns.from_rows([]), since=T0, until=T0 + 600,
                          phi_target=0.75, latency_target_s=2.0)
    assert empty.totals.requests == 0 and empty.phi.measured is None and empty.phi.off_target_share is None


def test_rolling_phi_uses_the_trailing_window() -> None:
    # one request a minute, every 4th to the API: per-minute phi swings 0/1, the 4-minute
    # trailing window (what the controller sees) is a steady 0.75 once it is full
    led = ledger([{"ts": T0 + m * 60 + 1, "is_local": m % 4 != 3} for m in range(12)])
    starts, phi = rolling_phi(agg(led, T0, T0 + 720), 240.0)
    assert starts[0] == T0 and phi[:3].tolist() == [1.0, 1.0, 1.0]
    assert phi[3:].tolist() == [0.75] * 9
    empty_starts, empty_phi = rolling_phi(agg(LedgerColumns.empty(), T0, T0 + 120), 300.0)
    assert empty_starts.shape == (2,) and np.isnan(empty_phi).all()
