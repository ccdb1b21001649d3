#!/usr/bin/env python3
"""What shadow judging costs the client: off (the default) against on at the highest share, side by side.

The real router in-process (RouterService + RouterApp over httpx.ASGITransport) before a fast
fake upstream in its own process (in this one, its thread would compete for the GIL with the router
and charge the router for the comparisons' extra upstream work) serving a local model, an API model
and a judge; clients pin the local model.
Arms interleaved round by round:
  off   no shadow judge (`[learning] shadow_share = 0`, the default): the hooks are `is None` tests
  on    shadow_share = 0.2 (the most the config allows), a real random draw, 2 comparisons in flight,
        labels written to a SQLite store: a fifth of the requests start a background comparison
        (an API answer and a judge call) on the same event loop as the client traffic
Reported per arm: the router's own overhead per request (x-wilton-overhead-ms), median / p95 / p99,
and on / off; comparisons started, dropped as busy, and labels written. Also, timed in isolation
(timeit): the sampling call for a request that is not drawn, and for one that is (the copy of its
messages).

    python bench/shadow_overhead.py                      # 6 rounds x 400 requests, concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_slow import Arm, drive, summary

from wilton_core.config import LearningConfig, StackConfig, parse_config
from wilton_core.router.service import RouterService
from wilton_core.router.shadow import ShadowJudge
from wilton_core.store import open_store
from wilton_core.testing.procs import ManagedProcess, free_port

ENV = {"BENCH_API_KEY": "k"}
BODY = {"model": "m1", "messages": [{"role": "user", "content": "Say hello in one word."}]}


def _config(url: str) -> StackConfig:
    api = {"provider": "openai", "base_url": url + "/v1", "api_key_env": "BENCH_API_KEY", "is_local": False,
           "input_cost_per_mtok": 1.0, "output_cost_per_mtok": 2.0}
    return parse_config({"models": [
        {"id": "m1", "provider": "openai", "model": "m1", "base_url": url + "/v1", "tier": "selfhost",
         "is_local": True},
        {"id": "api-x", "model": "api-x", "tier": "frontier", "capability": "advanced", **api},
        {"id": "judge", "model": "judge", "tier": "edge", **api},
    ], "routing": {"probe_models": False}, "learning": {"judge": "judge"}})


def _judge(svc: RouterService, store: Any) -> ShadowJudge:
    learning = LearningConfig(shadow_share=0.2, shadow_budget_usd_per_hour=1e6, shadow_max_in_flight=2,
                              judge="judge")
    return ShadowJudge(learning, svc.runtimes, store=store)


async def _round(arm: Arm, url: str, requests: int, concurrency: int, store: Any | None,
                 totals: dict[str, int]) -> None:
    svc = RouterService(_config(url), environ=ENV)
    if store is not None:
        svc.shadow = _judge(svc, store)
    await svc.start()
    try:
        await drive(svc, arm, requests, concurrency, BODY)
        if svc.shadow is not None:
            await svc.shadow.drain()
            c = svc.shadow.counts
            totals["sampled"] += c.sampled
            totals["busy"] += c.skipped["busy"]
            totals["judged"] += c.judged
    finally:
        await svc.stop()


def sampling_ns(url: str) -> tuple[float, float, float]:
    """The sampling hook in isolation, in ns per request: off (`is None`), on but not drawn, drawn."""
    svc = RouterService(_config(url), environ=ENV)
    judge = _judge(svc, None)
    n = 100_000

    class Always(random.Random):
        def random(self) -> float:
            return 0.0

    empty = timeit.timeit(lambda: None, number=n)
    off = timeit.timeit(lambda: svc.shadow is not None, number=n)
    judge._rng = random.Random(1)  # a real draw, never under the share
    judge.learning = judge.learning.model_copy(update={"shadow_share": 1e-9})
    not_drawn = timeit.timeit(lambda: judge.ticket(BODY, "id", None), number=n)
    judge.learning = judge.learning.model_copy(update={"shadow_share": 0.2})
    judge._rng = Always()
    drawn = timeit.timeit(lambda: judge.ticket(BODY, "id", None), number=n)
    return tuple((t - empty) / n * 1e9 for t in (off, not_drawn, drawn))  # type: ignore[return-value]


async def run(rounds: int, requests: int, concurrency: int) -> tuple[Arm, Arm, dict[str, int], str]:
    off, on = Arm("off"), Arm("on")
    totals = {"sampled": 0, "busy": 0, "judged": 0}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        fake = ManagedProcess.python_module(
            "wilton_core.testing.fake_upstream", "--port", str(port), "--name", "m1", "--models", "api-x,judge",
            "--script", '{"model": "judge", "reply": "{\\"A\\": 0.5, \\"B\\": 0.75}"}', log=Path(tmp) / "fake.log")
        fake.start(url + "/healthz")
        store = open_store(f"sqlite:///{Path(tmp) / 'labels.db'}")
        store.migrate()
        try:
            await _round(Arm("warmup"), url, min(requests, 50), concurrency, None, dict(totals))
            for r in range(rounds):
                order = [(off, None), (on, store)]
                for arm, st in order if r % 2 == 0 else list(reversed(order)):
                    await _round(arm, url, requests, concurrency, st, totals)
        finally:
            store.close()
            fake.stop()
        return off, on, totals, url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args(argv)
    off, on, totals, url = asyncio.run(run(args.rounds, args.requests, args.concurrency))
    so, sn = summary(off), summary(on)
    print(f"router overhead, shadow judging off vs on (share 0.2); {args.rounds} rounds x {args.requests} requests "
          f"per arm, concurrency {args.concurrency}; Python {platform.python_version()}")
    print(f"{'arm':<4} {'requests':>8} {'errors':>6} | {'overhead p50':>12} {'p95':>7} {'p99':>7} (ms)")
    for name, s in (("off", so), ("on", sn)):
        print(f"{name:<4} {s['requests']:>8.0f} {s['errors']:>6.0f} | {s['overhead_p50_ms']:>12.3f} "
              f"{s['overhead_p95_ms']:>7.3f} {s['overhead_p99_ms']:>7.3f}")
    print("on / off: " + ", ".join(f"{k.removesuffix('_ms')} {sn[k] / so[k]:.2f}"
                                  for k in ("overhead_p50_ms", "overhead_p95_ms", "overhead_p99_ms") if so[k] > 0))
    print(f"on arm: {totals['sampled']} comparisons started, {totals['busy']} dropped as busy, "
          f"{totals['judged']} labels written")
    off_ns, not_drawn_ns, drawn_ns = sampling_ns(url)
    print(f"sampling hook: off {off_ns:.0f} ns, on but not drawn {not_drawn_ns:.0f} ns, drawn {drawn_ns:.0f} ns "
          "per request (timeit)")
    return 0 if off.errors == on.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
