"""Simulated-time replay of the phi loop: synthetic requests → selector → serving → controller.

Used by tests/core/test_controller.py and bench/control_accuracy.py. Everything runs on a
simulated clock and a seeded `random.Random`, so an hour of traffic replays in milliseconds and
the same seed gives the same numbers.

A scenario is a list of phases; each phase fixes the target, the share of hard requests, the
share of requests only an API model can serve (vision) and whether local models are down, for a
number of control intervals. A policy turns (state, difficulties seen so far) into the control
state routers use; three are provided: our controller, a threshold calibrated once from a
calibration sample (RouteLLM style), and a weighted coin that ignores difficulty.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from wilton_core.core.control_state import ControlState, PhiWindow
from wilton_core.core.controller import Controller, ControllerConfig, split_threshold
from wilton_core.core.selector import ControlView, ModelView, RequestView, SelectorWeights, choose

__all__ = [
    "Phase",
    "Policy",
    "SimResult",
    "calibrated_once_policy",
    "coin_policy",
    "controller_policy",
    "default_models",
    "draw_difficulty",
    "simulate",
    "summarize",
]


@dataclass(slots=True, frozen=True)
class Phase:
    intervals: int
    phi_target: float = 0.75
    hard_share: float = 0.25
    vision_share: float = 0.0
    local_down: bool = False


@dataclass(slots=True)
class SimResult:
    """Per interval: target in force, measured phi, threshold published after the interval."""

    targets: list[float] = field(default_factory=list)
    phis: list[float] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    phase_starts: list[int] = field(default_factory=list)
    locals: list[int] = field(default_factory=list)    # requests served locally, per interval
    totals: list[int] = field(default_factory=list)    # requests routed, per interval


def default_models() -> list[ModelView]:
    return [
        ModelView("local-small", "selfhost", True, "basic", 8192, latency_p50_s=0.4),
        ModelView("groq-llama-8b", "edge", False, "standard", 131072, True, False, 0.05, 0.08,
                  latency_p50_s=0.3),
        ModelView("gpt-4o", "frontier", False, "advanced", 128000, True, True, 2.5, 10.0,
                  latency_p50_s=1.5),
    ]


def draw_difficulty(rng: random.Random, hard_share: float) -> float:
    """Easy requests ~ Beta(2, 6), hard ones ~ Beta(6, 2): overlapping, like a real scorer."""
    if rng.random() < hard_share:
        return rng.betavariate(6, 2)
    return rng.betavariate(2, 6)


# A policy: (previous state, target now, recent difficulties, last interval's window, now,
# the last interval's own difficulties) → state
Policy = Callable[[ControlState, float, Sequence[float], PhiWindow, float, Sequence[float]], ControlState]


def controller_policy(config: ControllerConfig | None = None) -> Policy:
    ctl = Controller(config or ControllerConfig())

    def policy(state: ControlState, target: float, diffs: Sequence[float], win: PhiWindow,
               now: float, last: Sequence[float]) -> ControlState:
        return ctl.step(replace(state, phi_target=target), win, diffs, now, last)

    return policy


def calibrated_once_policy(calibration: Sequence[float]) -> Policy:
    """RouteLLM: the threshold is the target quantile of a fixed calibration set, no feedback."""
    cal = sorted(calibration)

    def policy(state: ControlState, target: float, diffs: Sequence[float], win: PhiWindow,
               now: float, last: Sequence[float]) -> ControlState:
        t, tie = split_threshold(cal, target)
        return replace(state, phi_target=target, threshold=t, tie_api_share=tie,
                       updated_at=now, steps=state.steps + 1)

    return policy


def coin_policy() -> Policy:
    """A coin weighted phi:(1-phi): difficulty-blind, so any request may go either way.

    Expressed through the selector's own rule: threshold 0 sends everything with d > 0 to the
    API, so instead the coin is the tie share on an all-ties view (see `simulate`).
    """

    def policy(state: ControlState, target: float, diffs: Sequence[float], win: PhiWindow,
               now: float, last: Sequence[float]) -> ControlState:
        return replace(state, phi_target=target, threshold=-1.0,
                       tie_api_share=1.0 - target, extra={"coin": True},
                       updated_at=now, steps=state.steps + 1)

    return policy


def simulate(
    phases: Sequence[Phase],
    policy: Policy,
    *,
    requests_per_interval: int = 500,
    interval_s: float = 10.0,
    difficulty_window: int = 6,
    seed: int = 1,
    models: Sequence[ModelView] | None = None,
) -> SimResult:
    rng = random.Random(seed)
    base_models = list(models or default_models())
    weights = SelectorWeights()
    state = ControlState(phi_target=phases[0].phi_target if phases else 0.75)
    recent: deque[list[float]] = deque(maxlen=difficulty_window)
    out = SimResult()
    now = 0.0
    for phase in phases:
        out.phase_starts.append(len(out.phis))
        ms = [replace(m, healthy=not (phase.local_down and m.is_local)) for m in base_models]
        for _ in range(phase.intervals):
            coin = bool(state.extra.get("coin"))
            view = ControlView.from_state(state)
            if coin:
                view = ControlView(state.phi_target, 0.0, None, 1.0 - state.phi_target)
            local = total = 0
            diffs: list[float] = []
            for _ in range(requests_per_interval):
                d = draw_difficulty(rng, phase.hard_share)
                diffs.append(d)
                req = RequestView(needs_vision=rng.random() < phase.vision_share, est_prompt_tokens=200,
                                  difficulty=0.0 if coin else d)
                dec = choose(ms, req, view, weights, rng.random())
                if not dec.chain:
                    continue
                total += 1
                local += 1 if dec.chain[0] == "local-small" else 0
            now += interval_s
            recent.append(diffs)
            win = PhiWindow(since=now - interval_s, until=now, requests=total, local_requests=local)
            out.targets.append(phase.phi_target)
            out.phis.append(local / total if total else 0.0)
            out.locals.append(local)
            out.totals.append(total)
            pooled = [d for chunk in reversed(recent) for d in reversed(chunk)]  # newest first, as the store
            state = policy(state, phase.phi_target, pooled, win, now, diffs)
            out.thresholds.append(state.threshold)
    return out


@dataclass(slots=True, frozen=True)
class Summary:
    steady_mae: float          # mean |phi - target| over intervals >= settle_skip into each phase
    settling: list[int]        # per phase after the first: intervals until within `tol` for good
    worst_overshoot: float     # largest excursion beyond a new target, in the step's direction


def summarize(res: SimResult, *, tol: float = 0.03, settle_skip: int = 3) -> Summary:
    errs: list[float] = []
    settling: list[int] = []
    overshoot = 0.0
    bounds = [*res.phase_starts, len(res.phis)]
    for p in range(len(res.phase_starts)):
        a, b = bounds[p], bounds[p + 1]
        tgt = res.targets[a]
        errs += [abs(res.phis[i] - tgt) for i in range(a + settle_skip, b)]
        if p == 0:
            continue
        prev = res.targets[a - 1]
        direction = 1.0 if tgt > prev else -1.0
        last_bad = -1
        for i in range(a, b):
            if abs(res.phis[i] - tgt) > tol:
                last_bad = i - a
        settling.append(last_bad + 1)
        if tgt != prev:
            overshoot = max(overshoot, *((res.phis[i] - tgt) * direction for i in range(a, b)))
    return Summary(sum(errs) / len(errs) if errs else 0.0, settling, max(0.0, overshoot))
