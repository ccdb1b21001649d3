"""Replay harness: how well does each policy hold phi at its target?

Compares our controller (feedforward quantile + PI feedback + sampling-noise payback), a
threshold calibrated once on a sample of the starting difficulty mix (RouteLLM style), and a
3:1 weighted coin, over the same synthetic request streams (wilton_core.core.control_sim,
simulated time, seeded; every policy sees the same requests for a given seed).

    python bench/control_accuracy.py                       # print the table
    python bench/control_accuracy.py --seeds 5 --write-docs  # also refresh docs/control.md
    python bench/control_accuracy.py --json out.json

Figures per scenario and policy, mean ± sd over seeds. Phases with local models down are left
out of every error figure (no policy can hold phi there); "steady" means from the 4th interval
of each phase on.
  window MAE   mean |phi_W - target|, phi_W = local share over the last W intervals (the phi
               the stack controls and shows: a window, not one interval), over every window
               lying wholly inside a phase's steady part (points)
  long-run     |local share over each phase's whole steady part - target|, averaged over phases
               (points): the bias left after noise averages out
  interval MAE mean |phi_k - target| over single intervals (points). Its floor, for ANY policy
               that fixes its rule before the interval, is the binomial sampling noise
               E|B(n, phi)/n - phi| (printed as "floor"): see docs/control.md
  settle       intervals after a phase change until phi_k stays within ±tol for good
  overshoot    largest excursion beyond a new target in the direction of the step, or above the
               target after an outage ends, in the first 3 intervals after the change (points;
               the transient: later excursions are sampling noise, counted by the MAE figures)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from wilton_core.core.control_sim import (
    Phase,
    Policy,
    SimResult,
    calibrated_once_policy,
    coin_policy,
    controller_policy,
    draw_difficulty,
    simulate,
)

SCENARIOS: dict[str, list[Phase]] = {
    "steady 0.75": [Phase(40, 0.75)],
    "target steps 0.75→0.5→0.9": [Phase(15, 0.75), Phase(15, 0.5), Phase(15, 0.9)],
    "mix shift 10%→60% hard": [Phase(15, 0.75, hard_share=0.1), Phase(25, 0.75, hard_share=0.6)],
    "local outage + recovery": [Phase(15, 0.75), Phase(6, 0.75, local_down=True), Phase(20, 0.75)],
    "10% vision-only requests": [Phase(40, 0.75, vision_share=0.1)],
}
POLICIES: dict[str, Callable[[list[float]], Policy]] = {
    "controller (ours)": lambda cal: controller_policy(),
    "calibrated once": lambda cal: calibrated_once_policy(cal),
    "3:1 coin": lambda cal: coin_policy(),
}
FIGURES = ("window_mae", "longrun", "interval_mae", "settle", "overshoot")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "control.md"
BEGIN, END = "<!-- bench:control_accuracy:begin -->", "<!-- bench:control_accuracy:end -->"


@dataclass(slots=True, frozen=True)
class Figures:
    window_mae: float
    longrun: float
    interval_mae: float
    settle: int
    overshoot: float


def binomial_floor(n: int, p: float) -> float:
    """E|X/n - p| for X ~ Binomial(n, p), exactly (the best any pre-set rule can do per interval)."""
    mean_abs = 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    for k in range(n + 1):
        lg = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
        mean_abs += math.exp(lg) * abs(k / n - p)
    return mean_abs


def figures(res: SimResult, phases: Sequence[Phase], *, window: int, tol: float, skip: int = 3) -> Figures:
    bounds = [*res.phase_starts, len(res.phis)]
    win_errs: list[float] = []
    longrun: list[float] = []
    int_errs: list[float] = []
    settle = 0
    over = 0.0
    for p, ph in enumerate(phases):
        a, b = bounds[p], bounds[p + 1]
        tgt = ph.phi_target
        if not ph.local_down:
            steady = range(a + skip, b)
            int_errs += [abs(res.phis[i] - tgt) for i in steady]
            for end in range(a + skip + window, b + 1):
                loc, tot = sum(res.locals[end - window:end]), sum(res.totals[end - window:end])
                if tot:
                    win_errs.append(abs(loc / tot - tgt))
            loc, tot = sum(res.locals[a + skip:b]), sum(res.totals[a + skip:b])
            if tot:
                longrun.append(abs(loc / tot - tgt))
        if p == 0 or ph.local_down:
            continue
        last_bad = -1
        for i in range(a, b):
            if abs(res.phis[i] - tgt) > tol:
                last_bad = i - a
        settle = max(settle, last_bad + 1)
        prev = phases[p - 1]
        transient = range(a, min(b, a + skip))  # later excursions are noise, in the MAE figures
        if prev.local_down:
            over = max(over, *(res.phis[i] - tgt for i in transient))
        elif prev.phi_target != tgt:
            direction = 1.0 if tgt > prev.phi_target else -1.0
            over = max(over, *((res.phis[i] - tgt) * direction for i in transient))
    return Figures(statistics.fmean(win_errs) if win_errs else 0.0,
                   statistics.fmean(longrun) if longrun else 0.0,
                   statistics.fmean(int_errs) if int_errs else 0.0, settle, max(0.0, over))


def run(requests_per_interval: int, seeds: int, window: int, tol: float,
        scenarios: dict[str, list[Phase]] | None = None) -> dict[str, dict[str, list[Figures]]]:
    out: dict[str, dict[str, list[Figures]]] = {}
    for name, phases in (scenarios or SCENARIOS).items():
        out[name] = {p: [] for p in POLICIES}
        for seed in range(seeds):
            # RouteLLM calibrates once on a sample of the traffic it starts with; a fresh sample
            # per seed so its calibration error averages out like the other policies' noise.
            cal_rng = random.Random(10_000 + seed)
            calibration = [draw_difficulty(cal_rng, phases[0].hard_share) for _ in range(5000)]
            for pname, make in POLICIES.items():
                res = simulate(phases, make(calibration), requests_per_interval=requests_per_interval,
                               seed=100 + seed)
                out[name][pname].append(figures(res, phases, window=window, tol=tol))
    return out


def _ms(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    m = statistics.fmean(values) * scale
    sd = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{m:.{digits}f} ± {sd:.{digits}f}"


def summary(results: dict[str, dict[str, list[Figures]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per scenario and policy: mean and sd over seeds of every figure (error figures in points)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, by_policy in results.items():
        out[name] = {}
        for pname, figs in by_policy.items():
            row: dict[str, float] = {}
            for f in FIGURES:
                vals = [float(getattr(x, f)) * (1 if f == "settle" else 100) for x in figs]
                row[f + "_mean"] = statistics.fmean(vals)
                row[f + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
                row[f + "_worst"] = max(vals)
            out[name][pname] = row
    return out


def table(results: dict[str, dict[str, list[Figures]]], window: int) -> str:
    lines = [f"| scenario | policy | window MAE, W={window} | long-run error | interval MAE "
             "| settle (worst) | overshoot (worst) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, by_policy in results.items():
        for pname, figs in by_policy.items():
            settles = [x.settle for x in figs]
            lines.append(
                f"| {name} | {pname} | {_ms([x.window_mae for x in figs])} | {_ms([x.longrun for x in figs])} "
                f"| {_ms([x.interval_mae for x in figs])} | {statistics.fmean(settles):.1f} ({max(settles)}) "
                f"| {_ms([x.overshoot for x in figs], digits=1)} ({max(x.overshoot for x in figs) * 100:.1f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="requests per control interval")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--window", type=int, default=6, help="intervals in the phi window (6 × 10 s = 60 s)")
    ap.add_argument("--tol", type=float, default=0.04, help="settling band around the target")
    ap.add_argument("--json", dest="json_path", default=None)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = run(args.requests, args.seeds, args.window, args.tol)
    elapsed = time.perf_counter() - t0
    floor = binomial_floor(args.requests, 0.75) * 100
    tbl = table(results, args.window)
    note = (f"Points of phi, mean ± sd over {args.seeds} seeds ({args.requests} requests per interval); "
            f"settle and overshoot also worst seed in brackets. Interval-MAE floor at phi=0.75: "
            f"{floor:.2f} points (binomial sampling).")
    print(tbl)
    print(f"\n{note}\n{elapsed:.1f} s, Python {platform.python_version()}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "date": dt.date.today().isoformat(), "python": platform.python_version(),
            "requests_per_interval": args.requests, "seeds": args.seeds, "window": args.window,
            "tol": args.tol, "interval_floor_points": floor, "elapsed_s": elapsed,
            "summary": summary(results),
            "runs": {n: {p: [asdict(f) for f in figs] for p, figs in bp.items()} for n, bp in results.items()},
        }, indent=2), encoding="utf-8")
    if args.write_docs:
        cmd = (f"python bench/control_accuracy.py --requests {args.requests} --seeds {args.seeds} "
               f"--window {args.window} --write-docs")
        block = (f"{BEGIN}\nCommand: `{cmd}`  \nMachine: 2-core VM (shared), Python {platform.python_version()}; "
                 f"date: {dt.date.today().isoformat()}; run time {elapsed:.0f} s.  \n{note}\n\n{tbl}\n{END}")
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
