"""Replay harness: how well does each policy hold phi at its target?

Compares our controller (feedforward quantile + PI feedback), a threshold calibrated once on a
sample of the starting difficulty mix (RouteLLM style), and a 3:1 weighted coin, over the same
synthetic request streams (wilton_core.core.control_sim, simulated time, seeded).

    python bench/control_accuracy.py                # print the table
    python bench/control_accuracy.py --write-docs   # also refresh the results block in docs/control.md

Metrics per scenario and policy (phases with local models down are left out of MAE/settle):
  MAE      mean |phi - target| per interval, skipping the first 3 intervals of each phase
  settle   worst number of intervals, after a phase change, until phi stays within ±4 points
  overshoot worst excursion beyond a new target in the direction of the step, or above the
           target in the interval after an outage ends (points)
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import sys
import time
from pathlib import Path

from wilton_core.core.control_sim import (
    Phase,
    calibrated_once_policy,
    coin_policy,
    controller_policy,
    draw_difficulty,
    simulate,
    summarize,
)

SCENARIOS: dict[str, list[Phase]] = {
    "steady 0.75": [Phase(30, 0.75)],
    "target steps 0.75→0.5→0.9": [Phase(10, 0.75), Phase(10, 0.5), Phase(10, 0.9)],
    "mix shift 10%→60% hard": [Phase(10, 0.75, hard_share=0.1), Phase(20, 0.75, hard_share=0.6)],
    "local outage + recovery": [Phase(8, 0.75), Phase(6, 0.75, local_down=True), Phase(12, 0.75)],
    "10% vision-only requests": [Phase(25, 0.75, vision_share=0.1)],
}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "control.md"
BEGIN, END = "<!-- bench:control_accuracy:begin -->", "<!-- bench:control_accuracy:end -->"


def run(requests_per_interval: int, seeds: int) -> list[tuple[str, str, float, int, float]]:
    rows = []
    for name, phases in SCENARIOS.items():
        cal_rng = random.Random(99)
        calibration = [draw_difficulty(cal_rng, phases[0].hard_share) for _ in range(5000)]
        policies = {
            "controller (ours)": controller_policy,
            "calibrated once": lambda cal=calibration: calibrated_once_policy(cal),
            "3:1 coin": coin_policy,
        }
        for pname, make in policies.items():
            maes, settles, overs = [], [], []
            for seed in range(seeds):
                res = simulate(phases, make(), requests_per_interval=requests_per_interval, seed=100 + seed)
                mae, settle, over = metrics(res, phases)
                maes.append(mae)
                settles.append(settle)
                overs.append(over)
            rows.append((name, pname, sum(maes) / len(maes), max(settles), max(overs)))
    return rows


def metrics(res, phases: list[Phase], tol: float = 0.04, skip: int = 3) -> tuple[float, int, float]:
    """Like control_sim.summarize, but outage phases (where no policy can hold phi) are left
    out of MAE and settling, and the phase after an outage counts as a step: its overshoot is
    the excursion above target on recovery (integral windup shows up here)."""
    s = summarize(res, tol=tol, settle_skip=skip)
    bounds = [*res.phase_starts, len(res.phis)]
    errs: list[float] = []
    settle = 0
    over = s.worst_overshoot
    for p, ph in enumerate(phases):
        if ph.local_down:
            continue
        a, b = bounds[p], bounds[p + 1]
        errs += [abs(res.phis[i] - ph.phi_target) for i in range(a + skip, b)]
        if p > 0:
            settle = max(settle, s.settling[p - 1])
            if phases[p - 1].local_down:
                over = max(over, *(res.phis[i] - ph.phi_target for i in range(a, b)))
    return (sum(errs) / len(errs) if errs else 0.0), settle, max(0.0, over)


def table(rows: list[tuple[str, str, float, int, float]]) -> str:
    lines = ["| scenario | policy | steady MAE (points) | settle (intervals) | worst overshoot (points) |",
             "|---|---|---:|---:|---:|"]
    for name, pname, mae, settle, over in rows:
        lines.append(f"| {name} | {pname} | {mae * 100:.2f} | {settle} | {over * 100:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="requests per control interval")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = run(args.requests, args.seeds)
    elapsed = time.perf_counter() - t0
    tbl = table(rows)
    print(tbl)
    print(f"\n{elapsed:.1f} s on {platform.machine()} ({platform.python_implementation()} {platform.python_version()})")
    if args.write_docs:
        cmd = f"python bench/control_accuracy.py --requests {args.requests} --seeds {args.seeds} --write-docs"
        block = (
            f"{BEGIN}\nCommand: `{cmd}`  \n"
            f"Machine: 2-core VM (shared), Python {platform.python_version()}; "
            f"date: {dt.date.today().isoformat()}; run time {elapsed:.1f} s.  \n"
            f"{args.requests} requests per interval, {args.seeds} seeds (MAE averaged, settle and overshoot "
            f"worst case).\n\n{tbl}\n{END}"
        )
        text = DOCS.read_text(encoding="utf-8")
        if BEGIN not in text or END not in text:
            print(f"{DOCS}: results markers missing", file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOCS.write_text(head + block + tail, encoding="utf-8")
        print(f"wrote results into {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
