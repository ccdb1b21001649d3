from __future__ import annotations

import pytest

from wilton_core.hpc.model import TaskResult
from wilton_core.hpc.summary import percentile, summarize


def ok(model: str, tier: str, local: bool, lat: float, tin: int = 10, tout: int = 5, cost: float = 0.0) -> TaskResult:
    return TaskResult(status="ok", model_id=model, tier=tier, is_local=local, latency_s=lat, tokens_in=tin,
                      tokens_out=tout, cost_usd=cost, text="x")


def test_percentile_interpolates_like_numpy():
    import numpy as np

    xs = [0.3, 0.1, 0.7, 0.2, 1.5, 0.9, 0.4]
    for q in (0.0, 0.5, 0.95, 1.0):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q * 100)))
    assert percentile([], 0.5) is None
    assert percentile([2.0], 0.95) == 2.0


def test_summary_groups_shares_phi_and_cost():
    results = [ok("local-small", "selfhost", True, lat) for lat in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    results += [ok("sim-frontier", "frontier", False, 2.0, tin=100, tout=50, cost=0.00075),
                ok("sim-frontier", "frontier", False, 4.0, tin=100, tout=50, cost=0.00075)]
    results += [TaskResult(status="error", http_status=503, error="HTTP 503: no model"),
                TaskResult(status="pending")]
    s = summarize(results)
    assert (s.total, s.ok, s.errors, s.pending) == (10, 8, 1, 1)
    assert s.phi == pytest.approx(6 / 8)
    assert [(g.tier, g.model) for g in s.groups] == [("selfhost", "local-small"), ("frontier", "sim-frontier")]
    local, api = s.groups
    assert local.count == 6 and local.share == pytest.approx(0.75) and local.is_local
    assert local.latency_p50_s == pytest.approx(0.35)
    assert local.latency_p95_s == pytest.approx(0.575)
    assert api.share == pytest.approx(0.25) and api.latency_p50_s == pytest.approx(3.0)
    assert api.tokens_in == 200 and api.tokens_out == 100
    assert s.cost_usd == pytest.approx(0.0015)
    assert s.tokens == 6 * 15 + 2 * 150
    assert s.error_kinds == {"HTTP 503": 1}
    assert s.as_json()["groups"][1]["model"] == "sim-frontier"


def test_error_kinds_carry_the_routers_error_code():
    s = summarize([
        TaskResult(status="error", http_status=400, error="HTTP 400: no_capable_model: No configured model: it needs x"),
        TaskResult(status="error", http_status=400, error="HTTP 400: no_capable_model: No configured model: it needs y"),
        TaskResult(status="error", http_status=502, error="HTTP 502: bad gateway: upstream said no"),
    ])
    assert s.error_kinds == {"HTTP 400 no_capable_model": 2, "HTTP 502": 1}


def test_summary_of_nothing_answered_has_no_phi():
    s = summarize([TaskResult(status="error", error="timeout: no answer")])
    assert s.phi is None and s.groups == [] and s.error_kinds == {"timeout": 1}
