#!/usr/bin/env python3
"""Bounded soak: a real router process at a steady request rate against the fake upstream.

Reports errors (target: zero), achieved rate, latency, and the router's RSS (psutil) after the
warm-up and at the end (target: flat), then stops the router gracefully and checks that every
request the clients saw succeed is in the ledger.

    python bench/soak.py                        # 10 minutes at 50 req/s (the documented figure)
    python bench/soak.py --seconds 60 --rate 40 # a short one
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import faults  # the sibling harness (bench/faults.py)

__all__ = ["SoakResult", "main", "soak"]

MB = 1024 * 1024


@dataclass(slots=True)
class SoakResult:
    seconds: float
    rate: float
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    p50_s: float = 0.0
    p99_s: float = 0.0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (elapsed s, bytes)
    rss_warm: int = 0
    rss_end: int = 0
    rss_max: int = 0
    not_in_ledger: int = 0
    router_rc: int | None = None

    @property
    def achieved_rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def rss_growth(self) -> int:
        return self.rss_end - self.rss_warm


def soak(workdir: Path, seconds: float = 600.0, rate: float = 50.0, concurrency: int = 8,
         sample_s: float = 10.0, warmup_s: float | None = None) -> SoakResult:
    import psutil

    warm = warmup_s if warmup_s is not None else min(60.0, max(5.0, seconds * 0.1))
    res = SoakResult(seconds, rate)
    stack = faults.RouterStack(workdir).start()
    try:
        proc = psutil.Process(stack.routers[0].proc.pid)  # type: ignore[union-attr]
        done = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            while not done.wait(sample_s if res.rss_samples else 0.0):
                res.rss_samples.append((time.monotonic() - t0, proc.memory_info().rss))
            res.rss_samples.append((time.monotonic() - t0, proc.memory_info().rss))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results = asyncio.run(faults.drive(stack.urls, seconds=seconds, requests=int(seconds * rate) + 1,
                                           concurrency=concurrency, rate=rate, stream_every=4, prefix="soak"))
        done.set()
        sampler.join(timeout=10)
        stack.routers[0].stop()
        res.router_rc = stack.routers[0].proc.returncode  # type: ignore[union-attr]
    finally:
        stack.stop()
    res.requests = len(results)
    bad = [r for r in results if not r.ok]
    res.errors = len(bad)
    res.error_samples = [f"{r.status} {r.error[:100]}" for r in bad[:5]]
    lat = sorted(r.latency_s for r in results)
    if lat:
        res.p50_s = lat[len(lat) // 2]
        res.p99_s = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    after_warm = [b for t, b in res.rss_samples if t >= warm] or [b for _, b in res.rss_samples]
    res.rss_warm, res.rss_end, res.rss_max = after_warm[0], res.rss_samples[-1][1], max(b for _, b in res.rss_samples)
    ledger = {r[0] for r in faults.ledger_rows(stack.store_url, "request_id")}
    res.not_in_ledger = sum(1 for r in results if r.ok and r.request_id not in ledger)
    return res


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600.0, help="soak length (default 600)")
    p.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    p.add_argument("--max-growth-mb", type=float, default=10.0, help="RSS growth after warm-up that fails the soak")
    args = p.parse_args(list(argv) if argv is not None else None)
    with tempfile.TemporaryDirectory(prefix="wilton-soak-") as d:
        r = soak(Path(d), args.seconds, args.rate, args.concurrency, args.sample_s)
    print(f"# soak, {time.strftime('%Y-%m-%d %H:%M')}, {faults.machine()}")
    print(f"# {args.seconds:.0f} s at {args.rate:g} req/s target, concurrency {args.concurrency}, every 4th a stream")
    print(f"requests {r.requests} ({r.achieved_rate:.1f}/s), errors {r.errors}, p50 {r.p50_s * 1000:.1f} ms, "
          f"p99 {r.p99_s * 1000:.1f} ms")
    print(f"router RSS: {r.rss_samples[0][1] / MB:.1f} MB at start, {r.rss_warm / MB:.1f} MB after warm-up, "
          f"{r.rss_end / MB:.1f} MB at the end (growth {r.rss_growth / MB:+.1f} MB, max {r.rss_max / MB:.1f} MB)")
    print("RSS samples (s: MB): " + ", ".join(f"{t:.0f}: {b / MB:.1f}" for t, b in r.rss_samples))
    print(f"graceful stop rc {r.router_rc}; answered requests missing from the ledger: {r.not_in_ledger}")
    for s in r.error_samples:
        print(f"  error: {s}")
    ok = r.errors == 0 and r.not_in_ledger == 0 and r.rss_growth <= args.max_growth_mb * MB and r.router_rc == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
