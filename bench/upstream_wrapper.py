#!/usr/bin/env python3
"""What the upstream-call wrapping costs per call, this tree against another checkout, side by side.

Every upstream call runs inside the provider's error mapping (`upstream_call` and the request-side
`ErrorScope.request()`) and the overall deadline (`Deadline.run`). This times those layers around
an awaitable that does nothing, on uvloop as the router runs, so the figure is the wrapping alone:

    plain          `await` of a trivial coroutine method (the floor)
    upstream_call  the same method decorated with `upstream_call`
    deadline       `Deadline(...).run(...)` around the plain call
    both           a decorated call under a deadline (what a provider's `complete` pays)
    request_scope  `with scope.request():` around nothing (the request-translation guard)

Each variant runs in its own process (`--variant NAME:PYTHONPATH=...`), rounds interleaved, and the
medians are printed with the ratio to the first variant:

    python bench/upstream_wrapper.py --variant base:PYTHONPATH=/tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()

CHILD = r"""
import asyncio, json, sys, time
import wilton_core
print(wilton_core.__file__, file=sys.stderr)
from wilton_core.providers.errors_map import ErrorScope, upstream_call
from wilton_core.providers.limits import Deadline, UpstreamLimits

class P:
    def error_scope(self):
        return ErrorScope("openai", "m", (None,))

    @upstream_call
    async def wrapped(self):
        return 1

    async def plain(self):
        return 1

async def main(n):
    p = P()
    lim = UpstreamLimits(10 ** 7, 10 ** 6, 60.0, 60.0)
    out = {}
    cases = [("plain", lambda: p.plain()), ("upstream_call", lambda: p.wrapped()),
             ("deadline", lambda: Deadline(lim, "x").run(p.plain())),
             ("both", lambda: Deadline(lim, "x").run(p.wrapped()))]
    for name, make in cases:
        for _ in range(1000):
            await make()
        t = time.perf_counter()
        for _ in range(n):
            await make()
        out[name] = (time.perf_counter() - t) / n * 1e6
    scope = p.error_scope()
    t = time.perf_counter()
    for _ in range(n):
        with scope.request():
            pass
    out["request_scope"] = (time.perf_counter() - t) / n * 1e6
    print(json.dumps(out))

try:
    import uvloop
    uvloop.run(main(int(sys.argv[1])))
except ImportError:
    asyncio.run(main(int(sys.argv[1])))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="append", default=[], help="NAME:PYTHONPATH=<checkout> (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=50_000)
    args = ap.parse_args(argv)
    # each child imports wilton_core from its PYTHONPATH: run it outside any checkout (a child's
    # working directory comes first on sys.path)
    variants: list[tuple[str, dict[str, str]]] = [("this", {"PYTHONPATH": str(HERE.parent.parent)})]
    for v in args.variant:
        name, _, kvs = v.partition(":")
        variants.append((name, dict(kv.split("=", 1) for kv in kvs.split(",") if kv)))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for rnd in range(args.rounds):
        order = variants if rnd % 2 == 0 else list(reversed(variants))
        for name, env in order:
            r = subprocess.run([sys.executable, "-c", CHILD, str(args.calls)], env={**os.environ, **env},
                               capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
            results[name].append(json.loads(r.stdout))
            if rnd == 0:
                print(f"{name}: {r.stderr.strip()}", file=sys.stderr)
    cases = list(results[variants[0][0]][0])
    med = {name: {c: statistics.median(r[c] for r in runs) for c in cases} for name, runs in results.items()}
    head = f"{'case':<15}" + "".join(f"{name + ' us':>12}" for name, _ in variants)
    head += "".join(f"{'ratio ' + name:>14}" for name, _ in variants[1:])
    print(head)
    for c in cases:
        row = f"{c:<15}" + "".join(f"{med[name][c]:12.2f}" for name, _ in variants)
        row += "".join(f"{med['this'][c] / med[name][c]:14.2f}" for name, _ in variants[1:])
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
