#!/usr/bin/env python3
"""Is the router slower when the store is slow? (It must not be: writes are off the request path.)

Runs the real router in-process (RouterService + RouterApp over httpx.ASGITransport) in front of a
fast local fake upstream (OpenAI wire format, no added latency), with its ledger writer and control
refresh on a SQLite store, in two arms interleaved round by round:

  fast   the store as is
  slow   the same store behind a wrapper that sleeps `--delay-ms` (50 ms) in every insert_ledger
         and every read the router makes (control state, model status, kv)

and reports, per arm, the router's own overhead per request (the x-wilton-overhead-ms header:
total time minus upstream time) and the client-side latency, median / p95 / p99, then the ratio
slow / fast. Every request must succeed and every record must reach the ledger by the end.

    python bench/store_slow.py                         # 6 rounds x 300 requests, concurrency 8
    python bench/store_slow.py --rounds 10 --requests 500 --concurrency 16 --delay-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from wilton_core.config import parse_config
from wilton_core.router.app import RouterApp
from wilton_core.router.service import RouterService
from wilton_core.store import open_store
from wilton_core.store.ledger_writer import LedgerWriter
from wilton_core.testing.fake_upstream import FakeUpstream

# What the router reaches for in the store: the ledger writer's batches, the control refresh
# and the model status table. Everything else is passed through untouched.
SLOW_METHODS = frozenset({"insert_ledger", "get_control_state", "query", "query_one", "kv_get", "kv_set",
                          "phi_window", "recent_difficulties", "execute", "executemany"})


class SlowStore:
    """Delegates to `inner`, sleeping `delay_s` before each call in SLOW_METHODS (the caller's thread)."""

    def __init__(self, inner: Any, delay_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self._inner = inner
        self._delay_s = delay_s
        self._sleep = sleep
        self.slow_calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in SLOW_METHODS or not callable(attr):
            return attr

        def slowed(*args: Any, **kwargs: Any) -> Any:
            self.slow_calls += 1
            self._sleep(self._delay_s)
            return attr(*args, **kwargs)

        return slowed


@dataclass
class Arm:
    name: str
    overhead_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    errors: int = 0
    store_calls: int = 0


def _config(url: str) -> Any:
    return parse_config({"models": [{"id": "m1", "provider": "openai", "model": "m1", "base_url": url + "/v1",
                                     "tier": "selfhost", "is_local": True, "capability": "standard"}],
                         "routing": {"probe_models": False}})


BODY: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": "Say hello in one word."}]}


async def drive(svc: RouterService, arm: Arm, requests: int, concurrency: int,
                body: dict[str, Any] = BODY) -> None:
    """`requests` chat requests through the router's ASGI app, `concurrency` at a time, into `arm`
    (the in-process client loop of this bench, tracing_overhead.py and shadow_overhead.py)."""
    left = [requests]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=RouterApp(svc)), base_url="http://router",
                                 timeout=30) as client:

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                t0 = time.perf_counter()
                r = await client.post("/v1/chat/completions", json=body)
                arm.latency_ms.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    arm.errors += 1
                    continue
                arm.overhead_ms.append(float(r.headers["x-wilton-overhead-ms"]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _round(arm: Arm, store: Any, url: str, requests: int, concurrency: int) -> None:
    writer = LedgerWriter(store)
    svc = RouterService(_config(url), store=store, ledger=writer, writer=writer, environ={}, replica=arm.name)
    await svc.start()
    try:
        await drive(svc, arm, requests, concurrency)
    finally:
        await svc.stop()  # flushes the ledger: a slow store makes this slower, never the requests
    arm.store_calls += getattr(store, "slow_calls", 0)


def _q(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def summary(arm: Arm) -> dict[str, float]:
    return {
        "requests": float(len(arm.latency_ms)), "errors": float(arm.errors),
        "overhead_p50_ms": _q(arm.overhead_ms, 0.5), "overhead_p95_ms": _q(arm.overhead_ms, 0.95),
        "overhead_p99_ms": _q(arm.overhead_ms, 0.99),
        "latency_p50_ms": _q(arm.latency_ms, 0.5), "latency_p95_ms": _q(arm.latency_ms, 0.95),
        "latency_p99_ms": _q(arm.latency_ms, 0.99),
        "overhead_mean_ms": statistics.fmean(arm.overhead_ms) if arm.overhead_ms else float("nan"),
    }


async def run(rounds: int, requests: int, concurrency: int, delay_s: float, db: Path) -> tuple[Arm, Arm, int, int]:
    fast, slow = Arm("fast"), Arm("slow")
    store = open_store(f"sqlite:///{db}")
    store.migrate()
    try:
        with FakeUpstream(models=["m1"]).start() as fake:
            await _round(Arm("warmup"), store, fake.url, min(requests, 50), concurrency)
            before = store.count_ledger()
            for r in range(rounds):
                # interleaved, alternating which arm goes first, so drift on a shared VM hits both
                order = [(fast, store), (slow, SlowStore(store, delay_s))]
                for arm, st in order if r % 2 == 0 else reversed(order):
                    await _round(arm, st, fake.url, requests, concurrency)
            written = store.count_ledger() - before
    finally:
        store.close()
    return fast, slow, written, 2 * rounds * requests


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=300, help="requests per arm per round")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--delay-ms", type=float, default=50.0, help="sleep per store call in the slow arm")
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wilton-slow-") as d:
        t0 = time.perf_counter()
        fast, slow, written, sent = asyncio.run(
            run(args.rounds, args.requests, args.concurrency, args.delay_ms / 1000, Path(d) / "bench.db"))
        elapsed = time.perf_counter() - t0
    sf, ss = summary(fast), summary(slow)
    print(f"router overhead with a fast vs a slow store ({args.delay_ms:g} ms per store call), "
          f"{args.rounds} rounds x {args.requests} requests per arm, concurrency {args.concurrency}")
    print(f"{'arm':<6} {'requests':>8} {'errors':>6} | {'overhead p50':>12} {'p95':>7} {'p99':>7} (ms) | "
          f"{'latency p50':>11} {'p95':>7} {'p99':>7} (ms)")
    for name, s in (("fast", sf), ("slow", ss)):
        print(f"{name:<6} {s['requests']:>8.0f} {s['errors']:>6.0f} | {s['overhead_p50_ms']:>12.3f} "
              f"{s['overhead_p95_ms']:>7.3f} {s['overhead_p99_ms']:>7.3f}      | {s['latency_p50_ms']:>11.3f} "
              f"{s['latency_p95_ms']:>7.3f} {s['latency_p99_ms']:>7.3f}")
    ratio = {k: ss[k] / sf[k] for k in ("overhead_p50_ms", "overhead_p99_ms", "latency_p50_ms", "latency_p99_ms")
             if sf[k] > 0}
    print("slow / fast: " + ", ".join(f"{k.removesuffix('_ms')} {v:.2f}" for k, v in ratio.items()))
    print(f"store calls slowed: {slow.store_calls}; ledger rows written {written} of {sent}; "
          f"{elapsed:.1f} s, Python {platform.python_version()}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "args": vars(args), "fast": sf, "slow": ss, "ratio": ratio, "slow_store_calls": slow.store_calls,
            "ledger_written": written, "sent": sent, "elapsed_s": elapsed}, indent=2), encoding="utf-8")
    ok = fast.errors == 0 and slow.errors == 0 and written == sent
    if not ok:
        print("FAILED: errors or lost ledger rows", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
