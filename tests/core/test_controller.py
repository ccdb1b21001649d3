"""The controller alone (pure step) and in closed loop with the selector on simulated time."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wilton_core.core.control_sim import (
    Phase,
    calibrated_once_policy,
    controller_policy,
    draw_difficulty,
    simulate,
    summarize,
)
from wilton_core.core.control_state import ControlState, PhiWindow
from wilton_core.core.controller import Controller, ControllerConfig, split_threshold

N = 2000  # requests per simulated interval: sampling noise ~1 point of phi


def test_split_threshold_continuous() -> None:
    d = sorted(i / 100 for i in range(100))
    t, tie = split_threshold(d, 0.75)
    assert t == 0.75 and tie == 1.0  # 75 values strictly below stay local, the tie goes to API


def test_split_threshold_point_mass() -> None:
    d = sorted([0.3] * 80 + [0.9] * 20)
    t, tie = split_threshold(d, 0.5)
    assert t == 0.3 and tie == pytest.approx(30 / 80)  # 30 of the 80 tied go to the API
    local = 80 * (1 - tie)
    assert local == pytest.approx(50)


def test_split_threshold_extremes() -> None:
    d = [0.1, 0.2, 0.3]
    assert split_threshold(d, 1.0) == (1.0, 0.0)
    assert split_threshold(d, 0.0) == (0.0, 1.0)
    assert split_threshold([], 0.4) == (0.4, 0.0)


@settings(max_examples=200, deadline=None)
@given(d=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.8, 1.0]) | st.floats(0, 1), min_size=1, max_size=300),
       q=st.floats(0, 1))
def test_split_threshold_keeps_share_q_local(d, q) -> None:
    d = sorted(d)
    t, tie = split_threshold(d, q)
    assert 0.0 <= t <= 1.0 and 0.0 <= tie <= 1.0
    local = sum(1 for x in d if x < t) + sum(1 for x in d if x == t) * (1 - tie)
    assert local == pytest.approx(q * len(d), abs=1e-6)


def test_feedforward_only_with_no_error() -> None:
    rng = random.Random(1)
    diffs = [rng.random() for _ in range(5000)]
    s = Controller().step(ControlState(phi_target=0.75), 0.75, diffs, now=10.0)
    assert s.threshold == pytest.approx(0.75, abs=0.02)
    assert s.steps == 1 and s.updated_at == 10.0 and s.error == 0.0


def test_feedback_raises_threshold_when_phi_low() -> None:
    rng = random.Random(2)
    diffs = [rng.random() for _ in range(5000)]
    ctl = Controller()
    s = ControlState(phi_target=0.75)
    for _ in range(3):
        s = ctl.step(s, 0.6, diffs, now=0.0)
    assert s.threshold > 0.8 and s.integral > 0


@settings(max_examples=300, deadline=None)
@given(
    target=st.floats(allow_nan=True, allow_infinity=True),
    thr=st.floats(allow_nan=True, allow_infinity=True),
    integ=st.floats(allow_nan=True, allow_infinity=True),
    measured=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    diffs=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40),
    corr=st.floats(allow_nan=True, allow_infinity=True),
    now=st.floats(allow_nan=True, allow_infinity=True),
)
def test_garbage_in_never_nan_out(target, thr, integ, measured, diffs, corr, now) -> None:
    state = ControlState(phi_target=target, threshold=thr, integral=integ,
                         extra={"correction": corr, "q": corr, "applied_target": target})
    out = Controller(ControllerConfig(min_difficulties=1)).step(state, measured, diffs, now, diffs)
    for v in (out.phi_target, out.threshold, out.integral, out.bias, out.tie_api_share, out.extra["q"]):
        assert math.isfinite(v)
    assert 0.0 <= out.threshold <= 1.0 and 0.0 <= out.phi_target <= 1.0
    assert out.measured_phi is None or 0.0 <= out.measured_phi <= 1.0
    assert out.error is None or math.isfinite(out.error)


def test_integral_clamped_and_step_bounded() -> None:
    cfg = ControllerConfig()
    ctl = Controller(cfg)
    s = ControlState(phi_target=0.5)
    prev = 0.0
    for _ in range(50):
        s = ctl.step(s, 0.2, [], now=0.0)  # persistent, uncorrectable-looking error
        assert abs(s.integral) <= cfg.integral_limit + 1e-12
        assert abs(s.bias - prev) <= cfg.max_correction_step + 1e-12
        prev = s.bias


def test_measured_window_too_small_holds() -> None:
    s = ControlState(phi_target=0.75, integral=0.1)
    out = Controller().step(s, PhiWindow(0, 10, requests=3, local_requests=0), [], now=10.0)
    assert out.integral == 0.1 and out.measured_phi == 0.0


def test_tokens_basis() -> None:
    ctl = Controller(ControllerConfig(phi_basis="tokens"))
    w = PhiWindow(0, 10, requests=100, local_requests=90, tokens=1000, local_tokens=500)
    assert ctl.step(ControlState(), w, [], 10.0).measured_phi == 0.5


# -- closed loop on simulated time ------------------------------------------------------------


def _phase_slice(res, p):
    bounds = [*res.phase_starts, len(res.phis)]
    return res.phis[bounds[p]:bounds[p + 1]]


def test_steady_stream_converges_within_2_points() -> None:
    res = simulate([Phase(30, 0.75)], controller_policy(), requests_per_interval=N, seed=11)
    tail = res.phis[5:]
    assert abs(sum(tail) / len(tail) - 0.75) < 0.02
    assert max(abs(p - 0.75) for p in tail) < 0.06


def test_target_steps_settle_within_3_intervals_small_overshoot() -> None:
    phases = [Phase(10, 0.75), Phase(10, 0.5), Phase(10, 0.9)]
    res = simulate(phases, controller_policy(), requests_per_interval=N, seed=12)
    summ = summarize(res, tol=0.04)
    assert all(s <= 3 for s in summ.settling), summ
    assert summ.worst_overshoot <= 0.05, summ
    for p, tgt in ((1, 0.5), (2, 0.9)):
        after = _phase_slice(res, p)[3:]
        assert abs(sum(after) / len(after) - tgt) < 0.02


def test_difficulty_mix_shift_is_absorbed() -> None:
    phases = [Phase(10, 0.75, hard_share=0.1), Phase(20, 0.75, hard_share=0.6)]
    ours = simulate(phases, controller_policy(), requests_per_interval=N, seed=13)
    shifted = _phase_slice(ours, 1)
    assert abs(shifted[0] - 0.75) > 0.1  # the shift really hit the first interval
    tail = shifted[6:]
    assert abs(sum(tail) / len(tail) - 0.75) < 0.02
    # A threshold calibrated once on the old mix does not recover: the controller is doing work.
    rng = random.Random(5)
    cal = [draw_difficulty(rng, 0.1) for _ in range(5000)]
    once = simulate(phases, calibrated_once_policy(cal), requests_per_interval=N, seed=13)
    once_tail = _phase_slice(once, 1)[6:]
    assert abs(sum(once_tail) / len(once_tail) - 0.75) > 0.15


def test_local_outage_drives_phi_down_and_recovery_brings_it_back() -> None:
    phases = [Phase(8, 0.75), Phase(6, 0.75, local_down=True), Phase(12, 0.75)]
    res = simulate(phases, controller_policy(), requests_per_interval=N, seed=14)
    assert max(_phase_slice(res, 1)) == 0.0
    rec = _phase_slice(res, 2)
    assert max(rec) <= 0.75 + 0.05  # no windup overshoot after the outage
    tail = rec[3:]
    assert abs(sum(tail) / len(tail) - 0.75) < 0.02


def test_hard_constraint_share_is_compensated() -> None:
    phases = [Phase(25, 0.75, vision_share=0.1)]
    ours = simulate(phases, controller_policy(), requests_per_interval=N, seed=15)
    tail = ours.phis[6:]
    assert abs(sum(tail) / len(tail) - 0.75) < 0.02


def test_mix_shift_is_detected_and_the_quantile_restarts_from_fresh_difficulties() -> None:
    phases = [Phase(8, 0.75, hard_share=0.1), Phase(6, 0.75, hard_share=0.6)]
    res = simulate(phases, controller_policy(), requests_per_interval=N, seed=21)
    shifted = _phase_slice(res, 1)
    assert abs(shifted[0] - 0.75) > 0.1
    # One interval of data from the new mix is enough: the 6-interval window is not waited out.
    assert all(abs(p - 0.75) < 0.04 for p in shifted[1:]), shifted


def test_no_false_shift_on_a_stationary_mix() -> None:
    rng = random.Random(3)
    ctl = Controller()
    s = ControlState(phi_target=0.75)
    shifts = 0
    for _ in range(40):
        pool = [rng.random() for _ in range(6000)]
        interval = pool[:2000]
        local = sum(1 for d in interval if d < s.threshold) if s.steps else 1500
        s = ctl.step(s, PhiWindow(0, 10, requests=2000, local_requests=local), pool, 10.0, interval)
        shifts += bool(s.extra["mix_shift"])
    assert shifts == 0


def test_a_shift_uses_only_the_newest_difficulties() -> None:
    ctl = Controller()
    s = ControlState(phi_target=0.5, threshold=0.5, tie_api_share=0.0, extra={"q": 0.5,
                                                                              "difficulty_samples": 4000})
    new = [0.8 + i / 10_000 for i in range(1000)]         # the mix moved up: every request is hard
    old = [i / 3000 for i in range(3000)]
    out = ctl.step(s, PhiWindow(0, 10, requests=1000, local_requests=0), new + old, 10.0, new)
    assert out.extra["mix_shift"] is True and out.extra["fresh_samples"] == 1000
    assert out.threshold >= 0.8  # the median of the new difficulties, not of new + old
