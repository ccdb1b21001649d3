import math
import time

import pytest

from wilton_core.core.control_state import ControlState
from wilton_core.core.selector import (
    ControlView,
    ModelView,
    RequestView,
    SelectorWeights,
    choose,
    eligible,
    ineligible_reason,
    phi_term,
    primary_class,
    score,
)

LOCAL = ModelView("local-small", "selfhost", True, "basic", 2048, latency_p50_s=0.4)
LOCAL_BIG = ModelView("local-big", "selfhost", True, "standard", 8192, supports_tools=True, latency_p50_s=1.2)
EDGE = ModelView("groq", "edge", False, "standard", 131072, True, False, 0.05, 0.08, latency_p50_s=0.3)
FRONTIER = ModelView("gpt-4o", "frontier", False, "advanced", 128000, True, True, 2.5, 10.0, latency_p50_s=1.5)
ALL = [LOCAL, LOCAL_BIG, EDGE, FRONTIER]
CTL = ControlView(phi_target=0.75, threshold=0.6)


def test_hard_constraints_each_reject() -> None:
    assert ineligible_reason(LOCAL, RequestView(needs_vision=True)) == "no_vision"
    assert ineligible_reason(LOCAL, RequestView(needs_tools=True)) == "no_tools"
    assert ineligible_reason(LOCAL, RequestView(est_prompt_tokens=2000, est_output_tokens=48)) is None
    assert ineligible_reason(LOCAL, RequestView(est_prompt_tokens=2000, est_output_tokens=49)) == "context_window"
    from dataclasses import replace
    assert ineligible_reason(replace(EDGE, healthy=False), RequestView()) == "unhealthy"
    assert ineligible_reason(replace(EDGE, configured=False), RequestView()) == "not_configured"
    assert ineligible_reason(replace(EDGE, available=False), RequestView()) == "unavailable"
    assert [m.id for m in eligible(ALL, RequestView(needs_vision=True))] == ["gpt-4o"]


def test_easy_request_goes_local_first_then_api_fallback() -> None:
    d = choose(ALL, RequestView(difficulty=0.2), CTL, u=0.5)
    assert d.primary == "local" and d.served_by == "local" and d.reason == "threshold"
    assert d.chain[:2] == ["local-small", "local-big"]
    assert set(d.chain[2:]) == {"groq", "gpt-4o"}


def test_hard_request_goes_api_edge_before_frontier() -> None:
    d = choose(ALL, RequestView(difficulty=0.9, capability_need="standard"), CTL, u=0.5)
    assert d.primary == "api"
    assert d.chain[:2] == ["groq", "gpt-4o"]
    assert set(d.chain[2:]) == {"local-small", "local-big"}


def test_advanced_need_prefers_frontier() -> None:
    d = choose(ALL, RequestView(difficulty=0.9, capability_need="advanced"), CTL, u=0.5)
    assert d.chain[0] == "gpt-4o"


def test_primary_class_empty_other_class_serves() -> None:
    d = choose(ALL, RequestView(difficulty=0.1, needs_vision=True), CTL, u=0.5)
    assert d.primary == "local" and d.served_by == "api" and d.reason == "primary_class_empty"
    assert d.chain == ["gpt-4o"]
    assert d.rejected["local-small"] == "no_vision"


def test_nothing_eligible() -> None:
    d = choose([LOCAL], RequestView(needs_tools=True), CTL)
    assert d.chain == [] and d.served_by is None and d.reason == "no_eligible_model"


def test_pinned() -> None:
    assert choose(ALL, RequestView(pinned_model="gpt-4o"), CTL).chain == ["gpt-4o"]
    assert choose(ALL, RequestView(pinned_model="nope"), CTL).reason == "pinned_unknown"
    d = choose(ALL, RequestView(pinned_model="local-small", needs_tools=True), CTL)
    assert d.chain == [] and d.reason == "pinned_ineligible:no_tools"


def test_threshold_boundary_and_tie_share() -> None:
    c = ControlView(threshold=0.5, tie_api_share=0.25)
    assert primary_class(0.5000001, c, 0.99) == "api"
    assert primary_class(0.4999999, c, 0.0) == "local"
    assert primary_class(0.5, c, 0.1) == "api"
    assert primary_class(0.5, c, 0.3) == "local"
    assert primary_class(math.nan, c, 0.9) == "api"  # unscorable → treated as hard
    share = sum(primary_class(0.5, c, i / 1000) == "api" for i in range(1000)) / 1000
    assert share == pytest.approx(0.25, abs=0.002)


def test_cost_and_latency_order_within_class() -> None:
    cheap_slow = ModelView("a", "edge", False, "standard", 100000, input_cost_per_mtok=0.1, latency_p50_s=3.0)
    dear_fast = ModelView("b", "edge", False, "standard", 100000, input_cost_per_mtok=50.0, latency_p50_s=0.2)
    req = RequestView(difficulty=1.0, est_prompt_tokens=10000, est_output_tokens=0)
    only_cost = SelectorWeights(latency=0, cost=1, capability=0, phi=0)
    only_lat = SelectorWeights(latency=1, cost=0, capability=0, phi=0)
    assert choose([dear_fast, cheap_slow], req, CTL, only_cost).chain == ["a", "b"]
    assert choose([cheap_slow, dear_fast], req, CTL, only_lat).chain == ["b", "a"]


def test_streaming_uses_ttft() -> None:
    slow_total_fast_first = ModelView("a", "edge", False, latency_p50_s=3.0, ttft_p50_s=0.1)
    steady = ModelView("b", "edge", False, latency_p50_s=1.0, ttft_p50_s=0.9)
    w = SelectorWeights(1, 0, 0, 0)
    assert choose([steady, slow_total_fast_first], RequestView(difficulty=1, stream=True), CTL, w).chain[0] == "a"
    assert choose([slow_total_fast_first, steady], RequestView(difficulty=1), CTL, w).chain[0] == "b"


def test_exact_score_ties_rotate_with_u() -> None:
    r1 = ModelView("r1", "selfhost", True)
    r2 = ModelView("r2", "selfhost", True)
    firsts = {choose([r1, r2], RequestView(), CTL, u=u).chain[0] for u in (0.1, 0.9)}
    assert firsts == {"r1", "r2"}


def test_phi_term_sign_and_weight() -> None:
    below = ControlView(phi_target=0.75, threshold=0.5, measured_phi=0.6)
    assert phi_term(LOCAL, below) == pytest.approx(-0.15)
    assert phi_term(EDGE, below) == pytest.approx(0.15)
    assert phi_term(LOCAL, ControlView()) == 0.0
    w0 = SelectorWeights(phi=0)
    w2 = SelectorWeights(phi=2)
    req = RequestView()
    assert score(LOCAL, req, below, w2) - score(LOCAL, req, below, w0) == pytest.approx(-0.3)


def test_control_view_from_state_sanitises() -> None:
    s = ControlState(phi_target=float("nan"), threshold=7.0, measured_phi=float("inf"),
                     tie_api_share=0.3)
    v = ControlView.from_state(s)
    assert v.phi_target == 0.75 and v.threshold == 1.0 and v.measured_phi is None and v.tie_api_share == 0.3


def test_choose_is_cheap() -> None:
    req = RequestView(difficulty=0.7, est_prompt_tokens=500)
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        choose(ALL, req, CTL, u=i / n)
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 200e-6, per_call  # tens of microseconds in practice; generous for a shared CI box
