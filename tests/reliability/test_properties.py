"""Hypothesis properties of the pure core the request path trusts: selector, breaker, controller.

tests/core has the example-based tests and single-step controller/phi-estimator properties; these
add the invariants over arbitrary inputs and arbitrary event sequences.
"""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from wilton_core.core.control_state import ControlState
from wilton_core.core.controller import Controller, ControllerConfig
from wilton_core.core.health import Breaker, BreakerState, backoff_delay
from wilton_core.core.selector import (
    TIE_EPS,
    ControlView,
    ModelView,
    RequestView,
    SelectorWeights,
    choose,
    ineligible_reason,
    primary_class,
)

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
anyfloat = st.floats(allow_nan=True, allow_infinity=True)
unit = st.floats(0.0, 1.0, exclude_max=True)
caps = st.sampled_from(["basic", "standard", "advanced", "bogus"])
latency = st.none() | st.floats(0, 1e4, allow_nan=False) | st.just(math.inf)


@st.composite
def model_views(draw: st.DrawFn) -> list[ModelView]:
    n = draw(st.integers(0, 7))
    out = []
    for i in range(n):
        out.append(ModelView(
            id=f"m{i}", tier=draw(st.sampled_from(["selfhost", "edge", "frontier"])), is_local=draw(st.booleans()),
            capability=draw(caps), context_window=draw(st.integers(1, 300_000)),
            supports_tools=draw(st.booleans()), supports_vision=draw(st.booleans()),
            input_cost_per_mtok=draw(st.floats(0, 100)), output_cost_per_mtok=draw(st.floats(0, 100)),
            healthy=draw(st.booleans()), configured=draw(st.booleans()), available=draw(st.booleans()),
            latency_p50_s=draw(latency), latency_p95_s=draw(latency), ttft_p50_s=draw(latency),
        ))
    return out


requests = st.builds(
    RequestView, needs_tools=st.booleans(), needs_vision=st.booleans(),
    est_prompt_tokens=st.integers(-10, 400_000), est_output_tokens=st.integers(-10, 100_000),
    capability_need=caps, difficulty=anyfloat, stream=st.booleans(),
    pinned_model=st.none() | st.sampled_from(["m0", "m1", "m3", "nope"]),
)
controls = st.builds(ControlView, phi_target=unit, threshold=unit, measured_phi=st.none() | unit, tie_api_share=unit)
weights = st.builds(SelectorWeights, latency=st.floats(0, 10), cost=st.floats(0, 10), capability=st.floats(0, 10),
                    phi=st.floats(0, 10))


@settings(max_examples=400, deadline=None)
@given(models=model_views(), req=requests, control=controls, w=weights, u=unit)
def test_selector_never_picks_an_ineligible_model(models, req, control, w, u) -> None:
    d = choose(models, req, control, w, u)
    by_id = {m.id: m for m in models}
    assert len(d.chain) == len(set(d.chain)), "a model appears twice in the chain"
    for mid in d.chain:
        assert ineligible_reason(by_id[mid], req) is None, (mid, ineligible_reason(by_id[mid], req))
    eligible_ids = {m.id for m in models if ineligible_reason(m, req) is None}
    assert d.rejected == {m.id: ineligible_reason(m, req) for m in models if m.id not in eligible_ids}
    if req.pinned_model is None:
        assert set(d.chain) == eligible_ids  # every eligible model is a fallback, none is forgotten
        if d.chain:
            # the primary class comes first, the other class only after it
            classes = ["local" if by_id[m].is_local else "api" for m in d.chain]
            assert classes == sorted(classes, key=lambda c: c != classes[0])
            assert all(math.isfinite(d.scores[m]) for m in d.chain)
    else:
        assert d.chain in ([], [req.pinned_model])
        assert bool(d.chain) == (req.pinned_model in eligible_ids)


@settings(max_examples=300, deadline=None)
@given(diff=anyfloat, control=controls, u=unit)
def test_primary_class_follows_the_threshold(diff, control, u) -> None:
    # The rule the code implements: within TIE_EPS of the threshold is a tie, decided by the draw
    # `u` against tie_api_share; above is API, below is local (an unscorable request is hard).
    c = primary_class(diff, control, u)
    d = diff if math.isfinite(diff) else 1.0
    if d > control.threshold + TIE_EPS:
        assert c == "api"
    elif d < control.threshold - TIE_EPS:
        assert c == "local"
    else:
        assert c == ("api" if u < control.tie_api_share else "local")


events = st.lists(
    st.tuples(st.sampled_from(["acquire", "ok", "fail", "fail_retry_after", "rate_limit", "release"]),
              st.floats(0, 50), st.floats(0, 1000)),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(evs=events, k=st.integers(1, 5), base=st.floats(0.01, 60), cap=st.floats(0.01, 600))
def test_breaker_invariants_over_any_event_sequence(evs, k, base, cap) -> None:
    b = Breaker(k, base, cap)
    now = 0.0
    probe_out = False
    for kind, dt, retry_after in evs:
        now += dt
        if kind == "acquire":
            state = b.state(now)
            available = b.available(now)
            got = b.acquire(now)
            assert got == available, "available() must predict acquire()"
            if state == BreakerState.OPEN:
                assert not got
            if state == BreakerState.HALF_OPEN and got:
                assert not probe_out, "two half-open probes at once"
                probe_out = True
                assert not b.acquire(now), "the half-open probe is single"
        elif kind == "ok":
            b.record_success()
            probe_out = False
            assert b.state(now) == BreakerState.CLOSED
        elif kind == "rate_limit":
            failures, opened = b.consecutive_failures, b.opened_count
            wait = b.record_rate_limit(now, retry_after if retry_after < 500 else None, 0.5)
            probe_out = False
            # a 429 defers, it never counts as a failure nor opens the breaker
            assert (b.consecutive_failures, b.opened_count) == (failures, opened)
            assert 0 <= wait <= max(cap, 0.0) and b.deferred_until >= now + wait
            assert b.available(now) is (b.deferred_until <= now and b.available(b.deferred_until))
        elif kind == "release":
            b.release()
            probe_out = False
        else:
            b.record_failure(now, "x", retry_after if kind == "fail_retry_after" else None)
            probe_out = False
        # never open for longer than the cap, measured from now
        assert b.cooldown_remaining(now) <= max(cap, 0.0) + 1e-9
        assert b.consecutive_failures >= 0


@settings(max_examples=300, deadline=None)
@given(attempt=st.integers(-5, 200), base=st.floats(0, 100), cap=st.floats(0, 100), u=anyfloat)
def test_backoff_delay_is_bounded(attempt, base, cap, u) -> None:
    d = backoff_delay(attempt, base, cap, u if math.isfinite(u) else 0.5)
    assert 0.0 <= d <= cap + 1e-12


@settings(max_examples=150, deadline=None)
@given(
    target=unit,
    steps=st.lists(
        st.tuples(st.none() | anyfloat, st.lists(anyfloat, max_size=30), st.none() | unit),
        min_size=1, max_size=25,
    ),
)
def test_controller_stays_in_bounds_over_any_sequence(target, steps) -> None:
    """Many steps with garbage measurements, garbage difficulties and target changes in between."""
    cfg = ControllerConfig(min_difficulties=1, min_requests=1)
    ctl = Controller(cfg)
    s = ControlState(phi_target=target)
    prev_bias = 0.0
    for i, (measured, diffs, new_target) in enumerate(steps):
        if new_target is not None:
            s = replace(s, phi_target=new_target)
        s = ctl.step(s, measured, diffs, float(i), diffs)
        assert 0.0 <= s.threshold <= 1.0 and 0.0 <= s.phi_target <= 1.0
        assert abs(s.integral) <= cfg.integral_limit + 1e-12
        assert abs(s.bias - prev_bias) <= cfg.max_correction_step + 1e-9
        assert 0.0 <= s.tie_api_share <= 1.0
        assert all(math.isfinite(v) for v in (s.threshold, s.integral, s.bias))
        prev_bias = s.bias
