"""Learning the deployment's traffic, end to end: PGR@25% before learning and after N labels.

    python bench/learning_curve.py [--labels feedback|shadow] [--checkpoints 200,500,2000] [--json out.json]
    python bench/learning_curve.py --small [--labels shadow]   # the CI smoke: seconds, asserts a rise

The workload (wilton_core/testing/routing_workload.py) is a task family the shipped scorer
routes at random level: the local model fails, mostly, exactly when the review is about an
animal. Nothing is simulated inside the stack:

- a fake upstream (testing/fake_upstream.py) serves `sim-local` and `sim-api` on the OpenAI wire
  and answers right or wrong per the hidden rule;
- a real `wilton-router` process (prompt capture on) routes `model="auto"` requests between
  them with the store's active scorer; the control state sends the top 25% of difficulties to
  the API (the quantile the coherence daemon's feedforward would publish, set here directly);
- `--labels feedback` (the default): clients check each answer against the truth and POST
  /v1/feedback with the score (so each label scores only the tier that answered, as in production);
- `--labels shadow`: no client feedback. The router's shadow judging (router/shadow.py) samples
  `shadow_share` = 0.2 of the requests (the config's maximum), has the other tier answer too and
  asks the judge model `sim-judge` (an API-tier model of the same fake upstream) to score both;
  the fake judge follows the labels (testing/routing_workload.judge_reply: it reads which answer
  is A and which is B from the judge prompt, since the router draws the order). Labels score both
  tiers. The bench sends about (labels still missing) / share requests per round and waits, after
  each round, until the router's health snapshot says no comparison is in flight;
- at each checkpoint the real refit (coherence/refit.py, what the daemon runs) fits on the newest
  N labels (N = the checkpoint; shadow rounds may overshoot by a few) and publishes only if better
  on held-back labels; the router loads the new version by itself.

Reported per checkpoint: PGR@25% on a fixed test set (prompts never sent, scored with the active
scorer, against their true labels), the refit's own held-back figures, and, beside it, what the
candidate fitted with each fill of the unobserved tier (core/label_rows.py) scores on the test
set (the comparison that chose the default fill; feedback mode only: shadow labels observe both
tiers, so no fill applies).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from wilton_core.coherence.refit import fit_candidate, refit
from wilton_core.core.classify import classify_request
from wilton_core.core.difficulty import DifficultyScorer
from wilton_core.core.difficulty_eval import oracle_pgr_curve, pgr_at, pgr_curve
from wilton_core.core.difficulty_train import LabelError
from wilton_core.core.label_rows import FILLS, PartialLabel
from wilton_core.store import open_store
from wilton_core.store.base import ControlState, Store
from wilton_core.store.difficulty_models import DifficultyVersions
from wilton_core.store.route_labels import count_labels, read_labels
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port
from wilton_core.testing.routing_workload import Task, answer_text, judge_reply, tasks, unit_hash

CONFIG = """
[[models]]
id = "sim-local"
provider = "openai"
model = "sim-local"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "advanced"

[[models]]
id = "sim-api"
provider = "openai"
model = "sim-api"
base_url = "{fake}/v1"
api_key_env = "WILTON_SIM_API_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
input_cost_per_mtok = 2.5
output_cost_per_mtok = 10.0

[routing]
backoff_base_s = 0.0
max_attempts_per_model = 1
control_refresh_s = 0.25

[learning]
feedback = true
"""
# shadow mode: the judge, an API model of the same fake upstream; pricier than sim-api, so the
# selector never puts it first for client traffic (the bench checks it served none)
SHADOW_CONFIG = """
shadow_share = {share}
shadow_budget_usd_per_hour = {budget}
shadow_max_in_flight = 32
judge = "sim-judge"

[[models]]
id = "sim-judge"
provider = "openai"
model = "sim-judge"
base_url = "{fake}/v1"
api_key_env = "WILTON_SIM_API_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
input_cost_per_mtok = 5.0
output_cost_per_mtok = 15.0
"""
SHADOW_SHARE = 0.2  # LearningConfig's maximum: production shares are ~1%, the bench sends 1/share requests a label
SHADOW_BUDGET_USD = 50.0  # per hour; a comparison costs ~$0.0015 here (fake usage), reserves ~$0.02 while in flight
API_SHARE = 0.25
TEST_SHARE = 0.3
MIN_LABELS = 100


def split() -> tuple[list[Task], list[Task]]:
    """(traffic pool, test set): a fixed split by a hash of the prompt; the test set is never sent."""
    pool, test = [], []
    for t in tasks():
        (test if unit_hash("test|" + t.prompt) < TEST_SHARE else pool).append(t)
    return pool, test


def difficulty(scorer: DifficultyScorer, prompt: str) -> float:
    return classify_request([{"role": "user", "content": prompt}], scorer)[1]


def test_pgr(scorer: DifficultyScorer, test: list[Task]) -> float:
    scores = [difficulty(scorer, t.prompt) for t in test]
    return pgr_at(pgr_curve(scores, [t.strong for t in test], [t.weak for t in test]), API_SHARE)


def publish_threshold(store: Store, scorer: DifficultyScorer, pool: list[Task]) -> float:
    """The 75% quantile of the traffic's difficulty: the top quarter goes to the API model."""
    scores = sorted(difficulty(scorer, t.prompt) for t in pool)
    threshold = scores[int(len(scores) * (1 - API_SHARE))]
    store.put_control_state(ControlState(phi_target=1 - API_SHARE, threshold=threshold, updated_at=time.time()))
    return threshold


async def send_traffic(url: str, chosen: list[Task], concurrency: int, feedback: bool = True) -> dict[str, int]:
    """One chat request per task, the answer checked, its score sent as feedback (when `feedback`)."""
    sem = asyncio.Semaphore(concurrency)
    counts = {"local": 0, "api": 0, "right": 0, "feedback_ok": 0, "judge_served": 0}

    async def one(client: httpx.AsyncClient, task: Task) -> None:
        async with sem:
            r = await client.post("/v1/chat/completions", json={
                "model": "auto", "messages": [{"role": "user", "content": task.prompt}]})
            r.raise_for_status()
            answer = r.json()["choices"][0]["message"]["content"].strip().lower()
            score = 1.0 if answer == task.truth else 0.0  # the checker: the app knows the right label
            counts["local" if r.headers["x-wilton-local"] == "true" else "api"] += 1
            counts["judge_served"] += int(r.headers["x-wilton-model"] == "sim-judge")
            counts["right"] += int(score)
            if not feedback:
                return
            f = await client.post("/v1/feedback", json={"request_id": r.headers["x-request-id"], "score": score})
            if f.status_code != 200:
                raise RuntimeError(f"feedback refused: {f.status_code} {f.text[:300]}")
            counts["feedback_ok"] += 1

    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        await asyncio.gather(*(one(client, t) for t in chosen))
    return counts


def shadow_idle(store: Store, after: float, timeout: float = 60.0) -> dict[str, Any]:
    """The router's shadow counts from a health snapshot taken after `after` (wall clock) with no
    comparison in flight: every comparison the requests sent before `after` started is done (its
    label written, or counted as failed). A comparison starts before its client is answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in store.kv_items("router_health:").values():
            snap = json.loads(raw)
            shadow = snap.get("shadow")
            if shadow is not None and float(snap.get("ts", 0.0)) > after and shadow["in_flight"] == 0:
                return dict(shadow)
        time.sleep(0.05)
    raise RuntimeError(f"shadow comparisons still in flight after {timeout:.0f}s")


def shadow_labels(store: Store) -> int:
    counts = [c for c in count_labels(store) if c.source == "shadow"]
    return counts[0].with_prompt if counts else 0


def collect_shadow(url: str, store: Store, pool: list[Task], rng: random.Random, target: int,
                   concurrency: int) -> tuple[dict[str, int], dict[str, Any], int]:
    """Send rounds of traffic until the store holds `target` shadow labels: each round about the
    missing labels / share requests, then a wait until no comparison is in flight. Returns the
    traffic counts, the router's shadow counts, and the labels held (>= target: a round can overshoot)."""
    counts: dict[str, int] = {}
    have, rounds = shadow_labels(store), 0
    stats: dict[str, Any] = {}
    while have < target:
        rounds += 1
        if rounds > 25:
            raise RuntimeError(f"shadow judging is not producing labels: {have} of {target} after 25 rounds ({stats})")
        n = math.ceil((target - have) / SHADOW_SHARE)
        sent = asyncio.run(send_traffic(url, [rng.choice(pool) for _ in range(n)], concurrency, feedback=False))
        for k, v in sent.items():
            counts[k] = counts.get(k, 0) + v
        stats = shadow_idle(store, time.time())
        have = shadow_labels(store)
    counts["rounds"] = rounds
    return counts, stats, have


def label_agreement(store: Store, by_prompt: dict[str, Task]) -> dict[str, Any]:
    """The shadow labels against the workload's truth: both tiers' scores must match it exactly
    (the fake judge follows the labels; a mismatch would mean the router mixed up A and B)."""
    labels = [lb for lb in read_labels(store, with_prompt=True) if lb.source == "shadow"]
    agree = sum(1 for lb in labels if (t := by_prompt.get((lb.prompt or "").removeprefix("user: "))) is not None
                and lb.weak_score == t.weak and lb.strong_score == t.strong)
    swapped = sum(1 for lb in labels if lb.detail.get("swapped") is True)
    served_local = sum(1 for lb in labels if lb.detail.get("served") == "local")
    return {"labels": len(labels), "agree_with_truth": agree, "swapped": swapped, "served_local": served_local}


def compare_fills(store: Store, anchor: DifficultyScorer, test: list[Task], newest: int) -> dict[str, Any]:
    """What the refit's candidate would be with each fill, on the refit's labels (the newest
    `newest`): test PGR, and whether the refit rule (held-back labels as observed) would publish it."""
    partial = [PartialLabel(lb.prompt or "", lb.weak_score, lb.strong_score)
               for lb in read_labels(store, with_prompt=True)[-newest:]]
    out: dict[str, Any] = {}
    for fill in FILLS:
        try:
            cand = fit_candidate(anchor, partial, fill)
        except LabelError:
            out[fill] = {"test_pgr_25": None, "would_publish": False}
            continue
        out[fill] = {"rows": cand.rows, "test_pgr_25": round(test_pgr(cand.scorer, test), 4),
                     "heldback_before": cand.before, "heldback_after": cand.after, "would_publish": cand.better}
    return out


def wait_for_version(url: str, version: int | None, probe: str, expected: float, timeout: float = 10.0) -> None:
    """Until the router scores like the store's active version (it polls about once a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # model "local": scored like any request, never shadowed (no stray labels from the probes)
        r = httpx.post(url + "/v1/chat/completions", json={"model": "local", "messages": [
            {"role": "user", "content": probe}]}, timeout=10.0)
        if abs(float(r.headers["x-wilton-difficulty"]) - expected) < 2e-3:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the router did not load scorer version {version} within {timeout:.0f}s")


def run(checkpoints: list[int], concurrency: int, seed: int, workdir: Path, labels: str = "feedback",
        budget_usd: float = SHADOW_BUDGET_USD) -> dict[str, Any]:
    pool, test = split()
    by_prompt = {t.prompt: t for t in pool}
    rng = random.Random(seed)
    shadow = labels == "shadow"

    def answer(model: str, last_user: str) -> str | None:
        if model == "sim-judge":
            return judge_reply(by_prompt, last_user)
        task = by_prompt.get(last_user)
        return None if task is None else answer_text(task, local=model == "sim-local")

    fake = FakeUpstream(models=["sim-local", "sim-api", "sim-judge"], answer=answer, name="learning-sim").start()
    cfg = workdir / "wilton.toml"
    text = CONFIG.format(fake=fake.url)
    if shadow:
        text += SHADOW_CONFIG.format(fake=fake.url, share=SHADOW_SHARE, budget=budget_usd)
    cfg.write_text(text)
    db = workdir / "wilton.db"
    store = open_store(f"sqlite:///{db}")
    store.migrate()
    versions = DifficultyVersions(store)
    _, scorer = versions.active_scorer()
    publish_threshold(store, scorer, pool)
    port = free_port()
    env = {"WILTON_STORE_URL": f"sqlite:///{db}", "WILTON_LEDGER_FLUSH_S": "0.05", "WILTON_CAPTURE_PROMPTS": "1",
           "WILTON_SIM_API_KEY": "sim-key", "WILTON_DATA_DIR": str(workdir / "data")}
    router = ManagedProcess.python_module("wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                                          env=env, log=workdir / "router.log")
    url = f"http://127.0.0.1:{port}"
    oracle = pgr_at(oracle_pgr_curve([t.strong for t in test], [t.weak for t in test]), API_SHARE)
    points: list[dict[str, Any]] = [{"labels": 0, "version": None, "test_pgr_25": round(test_pgr(scorer, test), 4)}]
    try:
        router.start(url + "/readyz", timeout=60)
        sent = 0
        for target in checkpoints:
            started = time.perf_counter()
            shadow_stats: dict[str, Any] = {}
            held = target
            if shadow:
                counts, shadow_stats, held = collect_shadow(url, store, pool, rng, target, concurrency)
            else:
                chosen = [rng.choice(pool) for _ in range(target - sent)]
                counts = asyncio.run(send_traffic(url, chosen, concurrency))
            traffic_s = time.perf_counter() - started
            sent = target
            parent, anchor = versions.active_scorer()
            fills = compare_fills(store, anchor, test, target)
            t0 = time.perf_counter()
            # the newest `target` labels: a shadow round may have left a few more in the store
            out = refit(store, now=time.time(), min_labels=MIN_LABELS, max_rows=target)
            refit_s = time.perf_counter() - t0
            version, scorer = versions.active_scorer()
            if out.published:
                publish_threshold(store, scorer, pool)
                probe = pool[0].prompt
                wait_for_version(url, version, probe, difficulty(scorer, probe))
            points.append({
                "labels": target, "version": version, "published": out.published, "reason": out.reason,
                "test_pgr_25": round(test_pgr(scorer, test), 4),
                "heldback_pgr_25_before": out.heldback_pgr_25_before,
                "heldback_pgr_25_after": out.heldback_pgr_25_after, "heldback_rows": out.heldback_rows,
                "traffic": counts, "traffic_s": round(traffic_s, 2), "refit_s": round(refit_s, 2),
                "fills": fills, "parent": parent, "labels_held": held, "refit_labels": out.labels,
            })
            if shadow:
                points[-1]["shadow"] = shadow_stats
                points[-1]["agreement"] = label_agreement(store, by_prompt)
    finally:
        router.stop()
        fake.stop()
        store.close()
    return {"points": points, "oracle_pgr_25": round(oracle, 4), "random_pgr_25": API_SHARE,
            "test_rows": len(test), "pool_rows": len(pool), "labels_mode": labels,
            "shadow_share": SHADOW_SHARE if shadow else None, "shadow_budget_usd_per_hour": budget_usd if shadow else None}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.3f}"


def render(res: dict[str, Any]) -> str:
    head = (f"labels: {res['labels_mode']}; test set {res['test_rows']} prompts (never sent); "
            f"random {_fmt(res['random_pgr_25'])}, oracle {_fmt(res['oracle_pgr_25'])} PGR@25%")
    if res["labels_mode"] == "shadow":
        return render_shadow(res, head)
    lines = [head,
             "| labels | active version | test PGR@25% | refit: held-back PGR@25% active -> candidate | "
             "candidate test PGR@25% by fill (anchor / mean / both) |",
             "|---:|---|---:|---|---|"]
    for p in res["points"]:
        if p["labels"] == 0:
            lines.append(f"| 0 | shipped | {_fmt(p['test_pgr_25'])} | — | — |")
            continue
        fills = " / ".join(_fmt(p["fills"][f]["test_pgr_25"]) for f in FILLS)
        lines.append(f"| {p['labels']} | {p['version'] or 'shipped'} | {_fmt(p['test_pgr_25'])} | "
                     f"{_fmt(p['heldback_pgr_25_before'])} -> {_fmt(p['heldback_pgr_25_after'])} "
                     f"({p['reason']}, {p['heldback_rows']} rows) | {fills} |")
    return "\n".join(lines)


def render_shadow(res: dict[str, Any], head: str) -> str:
    lines = [head + f"; shadow_share {res['shadow_share']}, budget ${res['shadow_budget_usd_per_hour']}/h",
             "| labels | active version | test PGR@25% (candidate) | refit: held-back PGR@25% active -> candidate | "
             "requests (local/api), rounds | labels held, agree with truth | shadow sampled / skipped / spend |",
             "|---:|---|---:|---|---|---|---|"]
    for p in res["points"]:
        if p["labels"] == 0:
            lines.append(f"| 0 | shipped | {_fmt(p['test_pgr_25'])} | — | — | — | — |")
            continue
        t, sh, ag = p["traffic"], p["shadow"], p["agreement"]
        skipped = sum(sh["skipped"].values())
        lines.append(f"| {p['labels']} | {p['version'] or 'shipped'} | {_fmt(p['test_pgr_25'])} "
                     f"({_fmt(p['fills']['anchor']['test_pgr_25'])}) | "
                     f"{_fmt(p['heldback_pgr_25_before'])} -> {_fmt(p['heldback_pgr_25_after'])} "
                     f"({p['reason']}, {p['heldback_rows']} rows) | {t['local'] + t['api']} ({t['local']}/{t['api']}), "
                     f"{t['rounds']} | {p['labels_held']}, {ag['agree_with_truth']}/{ag['labels']} | "
                     f"{sh['sampled']} / {skipped} {_skips(sh['skipped'])} / ${sh['spend_usd']:.3f} |")
    return "\n".join(lines)


def _skips(skipped: dict[str, int]) -> str:
    parts = [f"{k} {v}" for k, v in skipped.items() if v]
    return f"({', '.join(parts)})" if parts else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--checkpoints", default="200,500,2000", help="label counts to refit and report at")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--small", action="store_true", help="CI smoke: one checkpoint of 300 labels; asserts a rise")
    ap.add_argument("--labels", choices=("feedback", "shadow"), default="feedback",
                    help="where labels come from: client feedback, or the router's shadow judging")
    ap.add_argument("--budget", type=float, default=SHADOW_BUDGET_USD,
                    help="shadow mode: [learning] shadow_budget_usd_per_hour")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    checkpoints = [300] if args.small else sorted({int(x) for x in args.checkpoints.split(",") if x.strip()})
    if not checkpoints or checkpoints[0] < MIN_LABELS:
        print(f"learning_curve: checkpoints must be >= {MIN_LABELS} labels", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wilton-learning-") as tmp:
        res = run(checkpoints, args.concurrency, args.seed, Path(tmp), args.labels, args.budget)
    res.update(machine=machine(), date=datetime.now(UTC).strftime("%Y-%m-%d"),
               seconds=round(time.perf_counter() - started, 1), small=args.small, seed=args.seed)
    print(render(res))
    print(f"{res['machine']}; {res['date']}; {res['seconds']} s")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2))
    if args.small:
        last = res["points"][-1]
        # shadow mode: which requests the router samples is random (by design), so whether the
        # refit's gate publishes at 300 labels is too (about 1 run in 6 keeps the active model);
        # the smoke asserts the candidate it fitted, which the refit's rule then judged
        after = last["fills"]["anchor"]["test_pgr_25"] if args.labels == "shadow" else last["test_pgr_25"]
        before = res["points"][0]["test_pgr_25"]
        if not after > before:
            print(f"learning_curve --small: the curve did not rise ({before} -> {after})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
