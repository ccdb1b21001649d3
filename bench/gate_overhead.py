#!/usr/bin/env python3
"""The access gate's own cost per request, in process: what `Gate.check` adds before routing.

Arms, interleaved over --rounds (medians reported), each `--n` checks of one chat body:
  open            no keys configured (loopback, as before keys existed)
  master          WILTON_MASTER_KEY presented
  virtual         a virtual key with an allow-list and a budget
  virtual_limits  the same with RPM/TPM limits (memory storage; Redis with --redis URL)

    python bench/gate_overhead.py [--n 20000] [--rounds 5] [--redis redis://127.0.0.1:6379/0]

Compare with the router's whole overhead (bench/gateway_overhead.py, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wilton_core.access.gate import Gate
from wilton_core.access.keys import KeyRepo, KeySpec
from wilton_core.store import open_store

MASTER = "bench-master-key-0123456789abcdef"
MODELS = {"local-a": True, "local-b": True, "api-x": False}
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}


async def _arm(kind: str, store_url: str, redis: str | None) -> tuple[Gate, list[tuple[bytes, bytes]]]:
    store = open_store(store_url)
    store.migrate()
    headers = [(b"host", b"router"), (b"content-type", b"application/json"), (b"user-agent", b"OpenAI/Python")]
    master = None if kind == "open" else MASTER
    if kind == "master":
        headers.append((b"authorization", f"Bearer {MASTER}".encode()))
    elif kind.startswith("virtual"):
        limits = {"rpm": 10**8, "tpm": 10**9} if kind == "virtual_limits" else {}
        _, key = KeyRepo(store).create(KeySpec(f"bench-{kind}", budget_usd=1e6, budget_period="day",
                                               models=("local-*", "api-x"), **limits))
        headers.append((b"authorization", f"Bearer {key}".encode()))
    gate = Gate(models=MODELS, master_key=master, store=store, redis_url=redis if kind == "virtual_limits" else None)
    await gate.start()
    return gate, headers


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    arms = ["open", "master", "virtual", "virtual_limits"]
    work = Path(tempfile.mkdtemp(prefix="wilton-gate-bench-"))
    gates = {a: await _arm(a, f"sqlite:///{work / (a + '.db')}", args.redis) for a in arms}
    per: dict[str, list[float]] = {a: [] for a in arms}
    try:
        for _ in range(args.rounds):
            for a in arms:
                gate, headers = gates[a]
                t = time.perf_counter()
                for _ in range(args.n):
                    verdict = await gate.check(headers, BODY)
                per[a].append((time.perf_counter() - t) / args.n * 1e6)
                assert not hasattr(verdict, "status"), verdict  # every check admitted
    finally:
        for gate, _ in gates.values():
            await gate.stop()
    return {a: statistics.median(v) for a, v in per.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--redis", default=None, help="redis:// URL for the virtual_limits arm")
    args = p.parse_args()
    res = asyncio.run(main_async(args))
    for arm, us in res.items():
        print(f"{arm:<16} {us:8.1f} us per check (median of {args.rounds} x {args.n})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
