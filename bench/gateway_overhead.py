#!/usr/bin/env python3
"""Gateway overhead: what an extra hop costs, for our router and for the LiteLLM proxy, side by side.

Three arms against one fast local fake upstream (wilton_core.testing.fake_upstream, its own
process), in the same run and interleaved (direct, router, litellm, direct, router, ...) so a
noisy neighbour hits every arm alike:
  direct   the load generator talks to the fake upstream itself
  router   through `wilton-router` (one openai-provider model pointing at the fake, model="auto")
  litellm  through the LiteLLM proxy from its own virtualenv (--litellm-bin), one worker, the
           same single model, no extras; skipped with a note when the binary is absent

For each concurrency (closed loop: N connections, each sends its next request when the last one
is answered) and each round, every arm gets `--seconds` of load. Reported per arm: requests/s,
errors, latency p50/p95/p99, added latency (arm minus direct, same round), the medians over the
rounds, the gateway's peak RSS under load and its CPU time per request (psutil, process tree: user +
system, every thread; on a shared machine this moves much less with the neighbours than req/s),
and the part of it spent on the root process's main thread (`loop us`: the router's event loop;
the rest is the ledger writer and helper threads — a GIL handed back and forth shows up as both
growing at once).

Load generator: Debian's `wrk` (with a Lua script for the POST body and the percentiles) when
installed, else a small asyncio + httptools generator in this process (`--loadgen python`).

    python bench/gateway_overhead.py                           # c=1,16,64, 3 rounds x 5 s, no streaming
    python bench/gateway_overhead.py --stream --litellm-bin /tmp/litellm-venv/bin/litellm
    python bench/gateway_overhead.py --seconds 1 --rounds 1 --concurrency 1 --no-litellm   # smoke
    # the router as it is against an older checkout of it (a variant's env reaches its process)
    python bench/gateway_overhead.py --stream --no-litellm --variant before:PYTHONPATH=/tmp/old-checkout

Results: a table on stdout and JSON in bench/results/ (or --json PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wilton_core.testing.procs import ManagedProcess, free_port

HERE = Path(__file__).resolve().parent
DEFAULT_LITELLM = "/tmp/litellm-venv/bin/litellm"
MODEL = "fake-model"
PROMPT = "Say hello in one short sentence."

ROUTER_CONFIG = """
[[models]]
id = "{model}"
provider = "openai"
model = "{model}"
base_url = "{upstream}/v1"
tier = "selfhost"
is_local = true
capability = "standard"
context_window = 32768

[routing]
probe_models = false
"""

LITELLM_CONFIG = """
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {upstream}/v1
      api_key: not-needed
"""

WRK_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_AUTH") ~= nil and os.getenv("BENCH_AUTH") ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_AUTH")
end
wrk.body = os.getenv("BENCH_BODY")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Run:
    arm: str
    mode: str  # "json" or "sse"
    concurrency: int
    round: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rss_mb: float | None = None
    cpu_us_per_req: float | None = None
    loop_cpu_us_per_req: float | None = None  # the root process's main (event-loop) thread alone

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Summary:
    arm: str
    mode: str
    concurrency: int
    rounds: int
    rps: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    added_p50_ms: float | None
    added_p95_ms: float | None
    added_p99_ms: float | None
    peak_rss_mb: float | None
    cpu_us_per_req: float | None = None
    loop_cpu_us_per_req: float | None = None


@dataclass
class Report:
    date: str
    machine: dict[str, Any]
    command: str
    loadgen: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)


# ---- processes -------------------------------------------------------------------------------


def _pid(p: ManagedProcess) -> int:
    assert p.proc is not None  # started
    return p.proc.pid


class RssSampler:
    """Peak RSS of a process tree while load runs (sampled every 100 ms in a thread), the CPU
    seconds it used meanwhile (`cpu_s`) and those of the root process's main thread (`loop_cpu_s`:
    the router's event loop; the rest is the ledger writer and helper threads). The split shows
    what a total hides: work that makes threads hand the GIL back and forth."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self.peak = 0
        self.cpu_s = 0.0
        self.loop_cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _cpu(self) -> float:
        import psutil

        total = 0.0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _loop_cpu(self) -> float:
        import psutil

        with contextlib.suppress(psutil.Error):
            for t in self._proc.threads():
                if t.id == self._proc.pid:  # the main thread's id is the process id
                    return float(t.user_time + t.system_time)
        return 0.0

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> RssSampler:
        self.peak = self._sample()
        self._cpu0 = self._cpu()
        self._loop0 = self._loop_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_s = self._cpu() - self._cpu0
        self.loop_cpu_s = self._loop_cpu() - self._loop0


# ---- load generators ---------------------------------------------------------------------------


def run_wrk(wrk: str, url: str, body: bytes, concurrency: int, seconds: float, script: Path,
            auth: str = "") -> dict[str, Any]:
    threads = 1 if concurrency < 32 else 2
    argv = [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(argv, env={**os.environ, "BENCH_BODY": body.decode(), "BENCH_AUTH": auth},
                         capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out.stdout[-500:]} {out.stderr[-500:]}")
    r = json.loads(line.removeprefix("BENCH_JSON "))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {"requests": r["requests"], "seconds": r["duration_us"] / 1e6, "errors": errors,
            "p50_ms": r["p50_us"] / 1000, "p95_ms": r["p95_us"] / 1000, "p99_ms": r["p99_us"] / 1000}


def run_python(url: str, body: bytes, concurrency: int, seconds: float, auth: str = "") -> dict[str, Any]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return asyncio.run(_python_load(u.hostname or "127.0.0.1", u.port or 80, u.path, body, concurrency, seconds,
                                    auth))


async def _python_load(host: str, port: int, path: str, body: bytes, concurrency: int,
                       seconds: float, auth: str = "") -> dict[str, Any]:
    """Closed-loop keep-alive load: `concurrency` connections, one request in flight on each."""
    import httptools

    bearer = f"Authorization: Bearer {auth}\r\n" if auth else ""
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{bearer}"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = [0]
    deadline = loop.time() + seconds

    class Conn(asyncio.Protocol):
        def __init__(self, done: asyncio.Future[None]) -> None:
            self.done = done
            self.parser = httptools.HttpResponseParser(self)
            self.sent = 0.0
            self.transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.send()

        def send(self) -> None:
            if loop.time() >= deadline:
                self.transport.close()
                return
            self.sent = time.perf_counter()
            self.transport.write(request)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                errors[0] += 1
                self.transport.close()

        def on_message_complete(self) -> None:
            latencies.append(time.perf_counter() - self.sent)
            if self.parser.get_status_code() >= 400:
                errors[0] += 1
            self.send()

        def connection_lost(self, exc: Exception | None) -> None:
            if loop.time() < deadline:
                errors[0] += 1
            if not self.done.done():
                self.done.set_result(None)

    t0 = time.perf_counter()
    waits = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done: Conn(d), host, port)
        waits.append(done)
    await asyncio.gather(*waits)
    elapsed = time.perf_counter() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    return {"requests": len(latencies), "seconds": elapsed, "errors": errors[0],
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}


# ---- the bench -----------------------------------------------------------------------------------


def body_for(model: str, stream: bool) -> bytes:
    req: dict[str, Any] = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        req["stream"] = True
    return json.dumps(req, separators=(",", ":")).encode()


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else 0.0


def summarize(runs: list[Run]) -> list[Summary]:
    direct = {(r.mode, r.concurrency, r.round): r for r in runs if r.arm == "direct"}
    keys = sorted({(r.arm, r.mode, r.concurrency) for r in runs}, key=lambda k: (k[1], k[2], k[0] != "direct", k[0]))
    out = []
    for arm, mode, c in keys:
        mine = [r for r in runs if (r.arm, r.mode, r.concurrency) == (arm, mode, c)]
        added: dict[str, list[float]] = {"p50_ms": [], "p95_ms": [], "p99_ms": []}
        for r in mine:
            d = direct.get((mode, c, r.round))
            if d is not None and arm != "direct":
                for k in added:
                    added[k].append(getattr(r, k) - getattr(d, k))
        rss = [r.rss_mb for r in mine if r.rss_mb is not None]
        cpu = [r.cpu_us_per_req for r in mine if r.cpu_us_per_req is not None]
        loop = [r.loop_cpu_us_per_req for r in mine if r.loop_cpu_us_per_req is not None]
        out.append(Summary(
            arm=arm, mode=mode, concurrency=c, rounds=len(mine), rps=_median([r.rps for r in mine]),
            errors=sum(r.errors for r in mine), p50_ms=_median([r.p50_ms for r in mine]),
            p95_ms=_median([r.p95_ms for r in mine]), p99_ms=_median([r.p99_ms for r in mine]),
            added_p50_ms=_median(added["p50_ms"]) if added["p50_ms"] else None,
            added_p95_ms=_median(added["p95_ms"]) if added["p95_ms"] else None,
            added_p99_ms=_median(added["p99_ms"]) if added["p99_ms"] else None,
            peak_rss_mb=max(rss) if rss else None,
            cpu_us_per_req=_median(cpu) if cpu else None,
            loop_cpu_us_per_req=_median(loop) if loop else None,
        ))
    return out


def headline(summary: list[Summary]) -> dict[str, Any]:
    """Max sustained req/s with zero errors per arm and mode, and the c=16 comparisons the targets name."""
    out: dict[str, Any] = {}
    for mode in sorted({s.mode for s in summary}):
        per: dict[str, Any] = {}
        for arm in sorted({s.arm for s in summary}, key=lambda a: (a != "direct", a != "router", a)):
            ok = [s for s in summary if s.arm == arm and s.mode == mode and s.errors == 0]
            mine = [s for s in summary if s.arm == arm and s.mode == mode]
            if not mine:
                continue
            best = max(ok, key=lambda s: s.rps) if ok else None
            rss = [s.peak_rss_mb for s in mine if s.peak_rss_mb is not None]
            per[arm] = {"max_rps_zero_errors": round(best.rps, 1) if best else 0.0,
                        "at_concurrency": best.concurrency if best else None,
                        "peak_rss_mb": round(max(rss), 1) if rss else None}
        c16 = {s.arm: s for s in summary if s.mode == mode and s.concurrency == 16}
        if "router" in c16:
            r = c16["router"]
            per["router_c16"] = {"added_p50_ms": r.added_p50_ms, "added_p99_ms": r.added_p99_ms}
            if "direct" in per and per["direct"]["max_rps_zero_errors"]:
                per["router_rps_share_of_direct"] = round(
                    per["router"]["max_rps_zero_errors"] / per["direct"]["max_rps_zero_errors"], 3)
            if "litellm" in c16 and "litellm" in per:
                lit = c16["litellm"]
                if per["litellm"]["max_rps_zero_errors"]:
                    per["rps_vs_litellm"] = round(per["router"]["max_rps_zero_errors"]
                                                  / per["litellm"]["max_rps_zero_errors"], 1)
                if r.added_p99_ms and lit.added_p99_ms:
                    per["p99_overhead_vs_litellm"] = round(lit.added_p99_ms / max(r.added_p99_ms, 1e-3), 1)
        out[mode] = per
    return out


def _fmt(v: float | None, nd: int = 2) -> str:
    return "-" if v is None else f"{v:,.{nd}f}"


def print_table(summary: list[Summary], out: Callable[[str], None] = print) -> None:
    out(f"{'mode':<5} {'c':>3} {'arm':<12} {'req/s':>9} {'err':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'+p50 ms':>8} {'+p95 ms':>8} {'+p99 ms':>8} {'RSS MB':>7} {'CPU us/req':>10} {'loop us':>8}")
    for s in summary:
        out(f"{s.mode:<5} {s.concurrency:>3} {s.arm:<12} {_fmt(s.rps, 0):>9} {s.errors:>5} {_fmt(s.p50_ms):>8}"
            f" {_fmt(s.p95_ms):>8} {_fmt(s.p99_ms):>8} {_fmt(s.added_p50_ms):>8} {_fmt(s.added_p95_ms):>8}"
            f" {_fmt(s.added_p99_ms):>8} {_fmt(s.peak_rss_mb, 0):>7} {_fmt(s.cpu_us_per_req, 0):>10}"
            f" {_fmt(s.loop_cpu_us_per_req, 0):>8}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", default="1,16,64", help="comma-separated connection counts")
    p.add_argument("--seconds", type=float, default=5.0, help="load per arm per round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    p.add_argument("--stream", action="store_true", help="also run streaming (SSE) requests")
    p.add_argument("--only-stream", action="store_true", help="streaming requests only")
    p.add_argument("--arms", default="direct,router,litellm")
    p.add_argument("--litellm-bin", default=DEFAULT_LITELLM)
    p.add_argument("--no-litellm", action="store_true")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--router-env", action="append", default=[], metavar="K=V",
                   help="extra environment for the router process")
    # BENCH_CLIENT_KEY=master|virtual|virtual_limits in a variant: the router requires a key and the
    # load generator sends it (master: WILTON_MASTER_KEY; virtual: a key with an allow-list and a
    # budget; virtual_limits: the same with RPM/TPM limits, in memory)
    p.add_argument("--variant", action="append", default=[], metavar="NAME:K=V[,K=V]",
                   help="another router arm with extra environment, interleaved with the others (A/B): "
                        "router_httpx:WILTON_UPSTREAM_HTTP=httpx, or before:PYTHONPATH=<old checkout>")
    p.add_argument("--json", type=Path, default=None, help="where to write results (default bench/results/)")
    p.add_argument("--keep-logs", action="store_true", help="print where the process logs are and keep them")
    return p


def _client_key(extra: dict[str, str], store_url: str) -> tuple[str, dict[str, str]]:
    """(key the load generator sends, router env) for an arm's BENCH_CLIENT_KEY (see --variant)."""
    kind = extra.get("BENCH_CLIENT_KEY", "")
    env = {k: v for k, v in extra.items() if k != "BENCH_CLIENT_KEY"}
    if not kind:
        return "", env
    import secrets

    master = secrets.token_hex(24)
    env["WILTON_MASTER_KEY"] = master
    if kind == "master":
        return master, env
    if kind not in ("virtual", "virtual_limits"):
        raise SystemExit(f"BENCH_CLIENT_KEY must be master, virtual or virtual_limits, not {kind!r}")
    limits = {"rpm": 10**8, "tpm": 10**9} if kind == "virtual_limits" else {}
    from wilton_core.access.keys import KeyRepo, KeySpec
    from wilton_core.store import open_store

    store = open_store(store_url)
    try:
        store.migrate()
        _, key = KeyRepo(store).create(KeySpec("bench", budget_usd=1e6, budget_period="day", models=("fake-*",),
                                               **limits))
    finally:
        store.close()
    return key, env


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c]
    modes = ["sse"] if args.only_stream else (["json", "sse"] if args.stream else ["json"])
    arms = [a for a in args.arms.split(",") if a]
    notes: list[str] = []
    if "litellm" in arms and (args.no_litellm or not Path(args.litellm_bin).exists()):
        arms.remove("litellm")
        notes.append("litellm arm skipped: " + ("--no-litellm" if args.no_litellm else
                     f"{args.litellm_bin} not found (python3 -m venv /tmp/litellm-venv && "
                     "/tmp/litellm-venv/bin/pip install 'litellm[proxy]==1.100.5')"))
    wrk = shutil.which("wrk")
    loadgen = args.loadgen if args.loadgen != "auto" else ("wrk" if wrk else "python")
    if loadgen == "wrk" and not wrk:
        print("wrk not found; use --loadgen python", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="wilton-gw-bench-"))
    script = work / "post.lua"
    script.write_text(WRK_LUA)
    procs: list[ManagedProcess] = []
    py = sys.executable
    try:
        up_port = free_port()
        upstream_url = f"http://127.0.0.1:{up_port}"
        up = ManagedProcess([py, "-m", "wilton_core.testing.fake_upstream", "--port", str(up_port), "--name", MODEL],
                            log=work / "upstream.log", cwd=work)
        procs.append(up)
        up.start(upstream_url + "/healthz", timeout=30)
        urls = {"direct": upstream_url + "/v1/chat/completions"}
        pids: dict[str, int] = {}
        routers: dict[str, dict[str, str]] = {}
        if "router" in arms:
            routers["router"] = dict(kv.split("=", 1) for kv in args.router_env)
        for v in args.variant:
            name, _, kvs = v.partition(":")
            routers[name] = dict(kv.split("=", 1) for kv in kvs.split(",") if kv)
            arms.insert(arms.index("litellm") if "litellm" in arms else len(arms), name)
        cfg = work / "router.toml"
        cfg.write_text(ROUTER_CONFIG.format(model=MODEL, upstream=upstream_url))
        auth: dict[str, str] = {}
        for name, extra in routers.items():
            port = free_port()
            store_url = f"sqlite:///{work / (name + '.db')}"
            auth[name], extra = _client_key(extra, store_url)
            router = ManagedProcess([py, "-m", "wilton_core.router.cli", "--port", str(port), "--log-level", "warning"],
                                    env={"WILTON_CONFIG": str(cfg), "WILTON_STORE_URL": store_url,
                                         "WILTON_DATA_DIR": str(work / "data"), **extra},
                                    log=work / f"{name}.log", cwd=work)
            procs.append(router)
            router.start(f"http://127.0.0.1:{port}/readyz", timeout=60)
            urls[name] = f"http://127.0.0.1:{port}/v1/chat/completions"
            pids[name] = _pid(router)
        if "litellm" in arms:
            cfg = work / "litellm.yaml"
            cfg.write_text(LITELLM_CONFIG.format(model=MODEL, upstream=upstream_url))
            port = free_port()
            lit = ManagedProcess([args.litellm_bin, "--config", str(cfg), "--port", str(port), "--host",
                                  "127.0.0.1", "--num_workers", "1"],
                                 env={"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                                      "DISABLE_SCHEMA_UPDATE": "True"}, log=work / "litellm.log", cwd=work)
            procs.append(lit)
            lit.start(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
            urls["litellm"] = f"http://127.0.0.1:{port}/v1/chat/completions"
            pids["litellm"] = _pid(lit)
        runs: list[Run] = []

        def once(arm: str, mode: str, c: int, rnd: int, seconds: float) -> Run:
            body = body_for("auto" if arm in routers else MODEL, mode == "sse")
            sampler = RssSampler(pids[arm]) if arm in pids else None
            if sampler:
                sampler.__enter__()
            try:
                if loadgen == "wrk":
                    assert wrk
                    r = run_wrk(wrk, urls[arm], body, c, seconds, script, auth.get(arm, ""))
                else:
                    r = run_python(urls[arm], body, c, seconds, auth.get(arm, ""))
            finally:
                if sampler:
                    sampler.__exit__()
            cpu = sampler.cpu_s * 1e6 / r["requests"] if sampler and r["requests"] else None
            loop_cpu = sampler.loop_cpu_s * 1e6 / r["requests"] if sampler and r["requests"] else None
            return Run(arm=arm, mode=mode, concurrency=c, round=rnd, rss_mb=sampler.peak / 2**20 if sampler else None,
                       cpu_us_per_req=cpu, loop_cpu_us_per_req=loop_cpu, **r)

        warm = min(2.0, args.seconds)
        for arm in arms:  # first requests pay imports, pools and JIT-free warm caches: not measured
            for mode in modes:
                once(arm, mode, max(concurrencies), -1, warm)
        for rnd in range(args.rounds):
            for mode in modes:
                for c in concurrencies:
                    for arm in arms:
                        run = once(arm, mode, c, rnd, args.seconds)
                        runs.append(run)
                        print(f"  round {rnd} {mode} c={c:<3} {arm:<12} {run.rps:9,.0f} req/s  p50 {run.p50_ms:7.2f}"
                              f"  p99 {run.p99_ms:7.2f} ms  errors {run.errors}"
                              f"  cpu {_fmt(run.cpu_us_per_req, 0)} us/req (loop {_fmt(run.loop_cpu_us_per_req, 0)})",
                              file=sys.stderr, flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        if args.keep_logs:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    summary = summarize(runs)
    print_table(summary)
    head = headline(summary)
    print(json.dumps(head, indent=2))
    for n in notes:
        print("note:", n)
    report = Report(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        command=" ".join([Path(sys.argv[0]).name if argv is None else "gateway_overhead.py", *(
            sys.argv[1:] if argv is None else argv)]),
        loadgen=loadgen, seconds=args.seconds, notes=notes,
        runs=[{**asdict(r), "rps": r.rps} for r in runs], summary=[asdict(s) for s in summary], headline=head,
    )
    path = args.json or HERE / "results" / f"gateway_overhead-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
