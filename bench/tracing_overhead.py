#!/usr/bin/env python3
"""What OpenTelemetry tracing costs the router: off (the default) against on, side by side.

The real router in-process (RouterService + RouterApp over httpx.ASGITransport) before a fast
local fake upstream, arms interleaved round by round:
  off   no OTEL_EXPORTER_OTLP_ENDPOINT: `tracing` is None, the SDK is never imported
  on    the OpenTelemetry SDK with a BatchSpanProcessor and an exporter that drops the spans
        (the export itself happens in the SDK's thread, off the request path, in production too)
Reported per arm: the router's own overhead per request (x-wilton-overhead-ms: its time minus
the upstream's), median / p95 / p99, and on / off. Also the off arm's added work in isolation:
the exact statements the tracing hooks add to a request when off, timed with timeit.

    python bench/tracing_overhead.py                      # 6 rounds x 400 requests, concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_slow import Arm, _config, drive, summary

from wilton_core.router.service import RouterService
from wilton_core.router.tracing import Tracing
from wilton_core.testing.fake_upstream import FakeUpstream


def _tracing_on() -> Tracing:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return Tracing(provider.get_tracer("bench"), provider)


async def _round(arm: Arm, url: str, requests: int, concurrency: int, tracing: Tracing | None) -> None:
    svc = RouterService(_config(url), environ={}, tracing=tracing)
    await svc.start()
    try:
        await drive(svc, arm, requests, concurrency)
    finally:
        await svc.stop()


def off_hooks_ns() -> float:
    """The statements tracing adds to one request when off, in ns (two `is None` tests in the
    service, one per ledger record path, and one ContextVar.get() per upstream attempt)."""
    from wilton_core.router.tracing import CURRENT

    class D:
        span = None

    svc, d = type("S", (), {"tracing": None})(), D()
    n = 200_000
    t = timeit.timeit(lambda: (svc.tracing is not None, d.span is not None, d.span is not None,
                               CURRENT.get() is None), number=n)
    empty = timeit.timeit(lambda: None, number=n)
    return (t - empty) / n * 1e9


async def run(rounds: int, requests: int, concurrency: int) -> tuple[Arm, Arm]:
    off, on = Arm("off"), Arm("on")
    with FakeUpstream(models=["m1"]).start() as fake:
        await _round(Arm("warmup"), fake.url, min(requests, 50), concurrency, None)
        for r in range(rounds):
            order = [(off, None), (on, "on")]
            for arm, kind in order if r % 2 == 0 else list(reversed(order)):
                await _round(arm, fake.url, requests, concurrency, _tracing_on() if kind else None)
    return off, on


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args(argv)
    off, on = asyncio.run(run(args.rounds, args.requests, args.concurrency))
    so, sn = summary(off), summary(on)
    print(f"router overhead, tracing off vs on; {args.rounds} rounds x {args.requests} requests per arm, "
          f"concurrency {args.concurrency}; Python {platform.python_version()}")
    print(f"{'arm':<4} {'requests':>8} {'errors':>6} | {'overhead p50':>12} {'p95':>7} {'p99':>7} (ms)")
    for name, s in (("off", so), ("on", sn)):
        print(f"{name:<4} {s['requests']:>8.0f} {s['errors']:>6.0f} | {s['overhead_p50_ms']:>12.3f} "
              f"{s['overhead_p95_ms']:>7.3f} {s['overhead_p99_ms']:>7.3f}")
    print("on / off: " + ", ".join(f"{k.removesuffix('_ms')} {sn[k] / so[k]:.2f}"
                                  for k in ("overhead_p50_ms", "overhead_p95_ms", "overhead_p99_ms") if so[k] > 0))
    print(f"tracing hooks when off: {off_hooks_ns():.0f} ns per request (timeit)")
    return 0 if off.errors == on.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
