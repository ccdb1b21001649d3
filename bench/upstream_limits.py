#!/usr/bin/env python3
"""Memory and time a provider spends on a hostile upstream: a huge reply, a comment-only stream.

    python bench/upstream_limits.py                      # 100 MiB reply, 20 s of `: ping`
    python bench/upstream_limits.py --mib 400 --client httpx

Prints the peak RSS growth of this process while the OpenAI-compatible provider reads a reply of
`--mib` MiB from the fake upstream (default limit: 16 MiB), and how long a stream fed only SSE
comments stays open with timeout_s = 2 (each case in a fresh process, so peaks do not mix).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from typing import Literal

from wilton_core.config import ModelConfig
from wilton_core.providers.factory import make_provider
from wilton_core.testing.fake_upstream import FakeUpstream

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _one(case: str, mib: int, client: str, comment_s: float) -> dict[str, object]:
    upstream_http: Literal["auto", "httpx"] = "httpx" if client == "httpx" else "auto"
    with FakeUpstream(models=("m1",)).start() as fake:
        cfg = ModelConfig(id="m1", provider="openai", model="m1", base_url=fake.url + "/v1", tier="selfhost",
                          is_local=True, timeout_s=2.0)
        p = make_provider(cfg, environ={}, upstream_http=upstream_http)
        before = _rss_mib()
        t0 = time.perf_counter()
        if case == "huge":
            fake.script("m1", huge_bytes=mib * 1024 * 1024)
            call = p.complete(BODY)
        else:
            fake.script("m1", raw_frames=[], tail_frame=": ping\n\n", tail_every_ms=100)

            async def drain() -> None:
                async for _ in p.stream(BODY):
                    pass
            call = drain()
        try:
            await asyncio.wait_for(call, comment_s + 10 if case == "comments" else 600)
            outcome = "ok"
        except Exception as e:  # the figure is what happened, whatever it is
            outcome = f"{type(e).__name__}: {str(e)[:90]}"
        await p.aclose()
        return {"case": case, "client": client, "seconds": round(time.perf_counter() - t0, 2),
                "peak_rss_growth_mib": round(_rss_mib() - before, 1), "outcome": outcome}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--client", choices=("http1", "httpx"), default="http1")
    ap.add_argument("--comment-s", type=float, default=20.0, help="how long the comment-only stream may run")
    ap.add_argument("--case", choices=("huge", "comments"), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(asyncio.run(_one(args.case, args.mib, args.client, args.comment_s))))
        return 0
    for case in ("huge", "comments"):
        out = subprocess.run([sys.executable, __file__, "--case", case, "--mib", str(args.mib), "--client",
                              args.client, "--comment-s", str(args.comment_s)], capture_output=True, text=True,
                             timeout=900)
        print(out.stdout.strip() or out.stderr.strip()[-500:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
