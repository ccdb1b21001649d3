#!/usr/bin/env python3
"""Fault injection on the request path: a real router process over scriptable fake upstreams.

Four models on one fake upstream (two local: OpenAI and Ollama wire; two API: OpenAI and
Anthropic wire). The control state is pinned so `auto` requests go local first, then each
scenario breaks models with a fake-upstream script and counts what the clients see.

Figures:
- success share per scenario while at least one eligible model stays healthy (target: 100 %);
- for faults after a stream's first byte (no fallback possible): how fast the client gets a
  terminal error event, and that the ledger records a `stream_error`;
- recovery: after an outage of both local models, how long until a healed model serves again
  (breaker cooldown, then the single half-open probe), against the configured bound.

    python bench/faults.py                 # every scenario, ~40 s on a 2-core VM
    python bench/faults.py --requests 40   # fewer requests per scenario
    python bench/faults.py --only resets,flap

The harness (`RouterStack`, `drive`) is shared with bench/soak.py and tests/reliability.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

__all__ = [
    "API_KEYS",
    "SCENARIOS",
    "Result",
    "RouterStack",
    "Scenario",
    "call",
    "drive",
    "main",
    "measure_recovery",
    "run_midstream",
    "run_scenario",
]

# Planted credentials of the fake API models: never real, and grepped for in every output.
API_KEYS = {"FAULTS_OPENAI_KEY": "sk-fault-openai-0123456789abcdef",
            "FAULTS_ANTHROPIC_KEY": "sk-ant-fault-0123456789abcdef"}

MODEL_TIMEOUT_S = 0.5
COOLDOWN_S = 0.5
COOLDOWN_MAX_S = 4.0

CONFIG = """
[[models]]
id = "local-a"
provider = "openai"
model = "local-a"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "standard"
timeout_s = {timeout}

[[models]]
id = "local-b"
provider = "ollama"
model = "local-b"
base_url = "{fake}"
tier = "selfhost"
is_local = true
capability = "standard"
timeout_s = {timeout}

[[models]]
id = "api-a"
provider = "openai"
model = "api-a"
base_url = "{fake}/v1"
api_key_env = "FAULTS_OPENAI_KEY"
tier = "edge"
is_local = false
capability = "standard"
input_cost_per_mtok = 0.1
output_cost_per_mtok = 0.4
timeout_s = {timeout}

[[models]]
id = "api-b"
provider = "anthropic"
model = "api-b"
base_url = "{fake}"
api_key_env = "FAULTS_ANTHROPIC_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
input_cost_per_mtok = 3.0
output_cost_per_mtok = 15.0
timeout_s = {timeout}

[routing]
backoff_base_s = 0.01
backoff_max_s = 0.05
max_retry_after_s = 1.5
cooldown_failures = 3
cooldown_s = {cooldown}
cooldown_max_s = {cooldown_max}
control_refresh_s = 0.5
"""

MODELS = ("local-a", "local-b", "api-a", "api-b")


@dataclass(slots=True)
class Result:
    """What one client saw. `ok`: a 200 with a complete answer (streams: [DONE], no error event)."""

    ok: bool
    status: int
    model: str | None
    request_id: str | None
    latency_s: float
    error: str = ""
    fallbacks: str = ""


class RouterStack:
    """A fake upstream (in this process) and one or more real `wilton-router` processes on one store.

    The store is SQLite in `workdir` unless `store_url` is given. Control state is pinned with
    threshold 1.0, so `auto` requests are local-first and fallback paths are deterministic.
    """

    def __init__(self, workdir: Path, *, store_url: str | None = None, timeout_s: float = MODEL_TIMEOUT_S,
                 cooldown_s: float = COOLDOWN_S, cooldown_max_s: float = COOLDOWN_MAX_S,
                 flush_s: float = 0.2, extra_env: Mapping[str, str] | None = None,
                 fake_default: Mapping[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.store_url = store_url or f"sqlite:///{workdir / 'wilton.db'}"
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self.cooldown_max_s = cooldown_max_s
        self.flush_s = flush_s
        self.extra_env = dict(extra_env or {})
        self.fake_default = dict(fake_default or {})
        self.fake: FakeUpstream | None = None
        self.routers: list[ManagedProcess] = []
        self.urls: list[str] = []
        self.config_path = workdir / "wilton.toml"

    @property
    def url(self) -> str:
        return self.urls[0]

    def env(self) -> dict[str, str]:
        return {"WILTON_STORE_URL": self.store_url, "WILTON_LEDGER_FLUSH_S": str(self.flush_s),
                "WILTON_LOG_LEVEL": "warning", **API_KEYS, **self.extra_env}

    def start(self, replicas: int = 1) -> RouterStack:
        from wilton_core.core.control_state import ControlState
        from wilton_core.store import open_store

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.fake = FakeUpstream(models=list(MODELS), name="faults").start()
        if self.fake_default:
            self.fake.script("*", **self.fake_default)
        self.config_path.write_text(CONFIG.format(fake=self.fake.url, timeout=self.timeout_s,
                                                  cooldown=self.cooldown_s, cooldown_max=self.cooldown_max_s))
        store = open_store(self.store_url)
        try:
            store.put_control_state(ControlState(phi_target=0.75, threshold=1.0, updated_at=time.time()))
        finally:
            store.close()
        for i in range(replicas):
            self.start_router(f"r{i}")
        return self

    def start_router(self, replica: str, port: int | None = None) -> ManagedProcess:
        port = port or free_port()
        proc = ManagedProcess.python_module(
            "wilton_core.router.cli", "--config", str(self.config_path), "--port", str(port),
            "--replica-id", replica, env=self.env(), log=self.workdir / f"router-{replica}.log",
        ).start(f"http://127.0.0.1:{port}/readyz", timeout=60)
        url = f"http://127.0.0.1:{port}"
        if url in self.urls:
            self.routers[self.urls.index(url)] = proc
        else:
            self.routers.append(proc)
            self.urls.append(url)
        return proc

    def script(self, *scripts: Mapping[str, Any]) -> None:
        assert self.fake is not None
        for s in scripts:
            self.fake.script(**s)

    def heal(self, timeout: float = 15.0) -> None:
        """Clear every script, then wait until each model's breaker has closed again."""
        assert self.fake is not None
        self.fake.clear()
        if self.fake_default:
            self.fake.script("*", **self.fake_default)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as c:
            for url in self.urls:
                pending = set(MODELS)
                while pending:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"breakers still open after {timeout}s: {sorted(pending)}")
                    for m in sorted(pending):
                        r = c.post(url + "/v1/chat/completions",
                                   json={"model": m, "messages": [{"role": "user", "content": "heal"}]})
                        if r.status_code == 200:
                            pending.discard(m)
                    if pending:
                        time.sleep(0.05)

    def log_text(self) -> str:
        return "\n".join(p.log_text() for p in self.routers)

    def stop(self) -> list[int | None]:
        codes = [p.stop() for p in self.routers]
        if self.fake is not None:
            self.fake.stop()
            self.fake = None
        return codes

    def __enter__(self) -> RouterStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _body(text: str, stream: bool, model: str = "auto") -> dict[str, Any]:
    return {"model": model, "stream": stream, "max_tokens": 32, "messages": [{"role": "user", "content": text}]}


async def call(client: httpx.AsyncClient, url: str, text: str, *, stream: bool = False,
               model: str = "auto") -> Result:
    """One chat completion as a client sees it; never raises."""
    t0 = time.perf_counter()
    status, model_h, rid, fb = 0, None, None, ""
    try:
        if not stream:
            r = await client.post(url + "/v1/chat/completions", json=_body(text, False, model))
            status = r.status_code
            model_h, rid = r.headers.get("x-wilton-model"), r.headers.get("x-request-id")
            fb = r.headers.get("x-wilton-fallbacks", "")
            if status != 200:
                return Result(False, status, model_h, rid, time.perf_counter() - t0, r.text[:300], fb)
            content = r.json()["choices"][0]["message"].get("content") or ""
            ok = bool(content)
            return Result(ok, status, model_h, rid, time.perf_counter() - t0, "" if ok else "empty answer", fb)
        async with client.stream("POST", url + "/v1/chat/completions", json=_body(text, True, model)) as r:
            status = r.status_code
            model_h, rid = r.headers.get("x-wilton-model"), r.headers.get("x-request-id")
            fb = r.headers.get("x-wilton-fallbacks", "")
            if status != 200:
                return Result(False, status, model_h, rid, time.perf_counter() - t0,
                              (await r.aread()).decode(errors="replace")[:300], fb)
            done, text_out, err = False, [], ""
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    break
                chunk = orjson.loads(data)
                if "error" in chunk:
                    err = str(chunk["error"].get("code"))
                for ch in chunk.get("choices") or []:
                    text_out.append((ch.get("delta") or {}).get("content") or "")
            ok = done and not err and bool("".join(text_out))
            return Result(ok, status, model_h, rid, time.perf_counter() - t0,
                          err or ("" if ok else "incomplete stream"), fb)
    except (httpx.HTTPError, ValueError, KeyError) as e:
        return Result(False, status, model_h, rid, time.perf_counter() - t0, f"{type(e).__name__}: {e}"[:300], fb)


async def drive(urls: Sequence[str], *, requests: int | None = None, seconds: float | None = None,
                concurrency: int = 4, stream_every: int = 0, rate: float | None = None,
                prefix: str = "q", client_timeout: float = 30.0, model: str = "auto") -> list[Result]:
    """Send requests round-robin over `urls` until `requests` are done or `seconds` have passed.

    Bounded in count and time: at least one of `requests`/`seconds` must be given. `rate` paces
    the start of requests (per second, over all workers); `stream_every=k` makes every k-th
    request a stream.
    """
    if requests is None and seconds is None:
        raise ValueError("give requests= or seconds=")
    limit = requests if requests is not None else 10_000_000
    deadline = time.monotonic() + (seconds if seconds is not None else 3600.0)
    out: list[Result] = []
    counter = [0]
    t_start = time.monotonic()
    async with httpx.AsyncClient(timeout=client_timeout,
                                 limits=httpx.Limits(max_connections=concurrency * len(urls) + 4)) as client:

        async def worker() -> None:
            while True:
                i = counter[0]
                if i >= limit or time.monotonic() >= deadline:
                    return
                counter[0] += 1
                if rate:
                    wait = t_start + i / rate - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if time.monotonic() >= deadline:
                        return
                stream = bool(stream_every) and i % stream_every == stream_every - 1
                out.append(await call(client, urls[i % len(urls)], f"{prefix} {i}: say hello", stream=stream,
                                      model=model))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    scripts: tuple[dict[str, Any], ...]
    stream_every: int = 0  # 0: JSON only; 1: streams only; k: every k-th is a stream
    healthy: tuple[str, ...] = ()  # models left healthy (documentation and the report)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("429-retry-after", "429 storm on both local models, Retry-After: 2",
             ({"model": "local-a", "status": 429, "retry_after": 2},
              {"model": "local-b", "status": 429, "retry_after": 2}), 3, ("api-a", "api-b")),
    Scenario("429-no-retry-after", "429 storm on both local models, no Retry-After",
             ({"model": "local-a", "status": 429}, {"model": "local-b", "status": 429}), 3, ("api-a", "api-b")),
    Scenario("429-all-but-one", "429 storm on three of four models, Retry-After: 1",
             ({"model": "local-a", "status": 429, "retry_after": 1}, {"model": "local-b", "status": 429},
              {"model": "api-a", "status": 429, "retry_after": 1}), 3, ("api-b",)),
    Scenario("timeouts", f"local-a answers after 1.5 s (timeout_s = {MODEL_TIMEOUT_S})",
             ({"model": "local-a", "latency_ms": 1500},), 3, ("local-b", "api-a", "api-b")),
    Scenario("resets", "connection reset by both local models",
             ({"model": "local-a", "reset": True}, {"model": "local-b", "reset": True}), 3, ("api-a", "api-b")),
    Scenario("malformed", "200 with malformed JSON / SSE / NDJSON from both local models",
             ({"model": "local-a", "malformed": True}, {"model": "local-b", "malformed": True}), 2,
             ("api-a", "api-b")),
    Scenario("stall-before-first-byte", "stream stalls before its first frame (local-a)",
             ({"model": "local-a", "stall_after_chunks": 0},), 1, ("local-b", "api-a", "api-b")),
    Scenario("die-before-first-byte", "stream connection drops before its first frame (both local)",
             ({"model": "local-a", "die_after_chunks": 0}, {"model": "local-b", "die_after_chunks": 0}), 1,
             ("api-a", "api-b")),
    Scenario("flap", "local-a and api-a flap: 3 requests up, 3 down (503)",
             ({"model": "local-a", "flap": 3}, {"model": "api-a", "flap": 3}), 3, ("local-b", "api-b")),
)


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    results: list[Result]
    served_by: dict[str, int] = field(default_factory=dict)

    @property
    def success_share(self) -> float:
        return sum(r.ok for r in self.results) / len(self.results) if self.results else 0.0

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    def latency(self, q: float) -> float:
        xs = sorted(r.latency_s for r in self.results)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def run_scenario(stack: RouterStack, sc: Scenario, requests: int = 60, concurrency: int = 4) -> ScenarioResult:
    stack.heal()
    stack.script(*sc.scripts)
    try:
        results = asyncio.run(drive(stack.urls, requests=requests, concurrency=concurrency,
                                    stream_every=sc.stream_every, prefix=sc.key))
    finally:
        stack.fake.clear() if stack.fake else None
    served: dict[str, int] = {}
    for r in results:
        if r.ok and r.model:
            served[r.model] = served.get(r.model, 0) + 1
    return ScenarioResult(sc, results, served)


@dataclass(slots=True)
class MidStream:
    kind: str
    results: list[Result]

    @property
    def error_events(self) -> int:
        """Streams that ended with the router's terminal error event."""
        return sum(1 for r in self.results if r.status == 200 and not r.ok and r.error not in ("", "incomplete stream"))

    @property
    def refused(self) -> int:
        """Requests refused at once with a 503 because the model's breaker had opened."""
        return sum(1 for r in self.results if r.status == 503)

    @property
    def hung_or_silent(self) -> int:
        """Anything else that is not a success: a client timeout or a stream cut with no error event."""
        return len(self.results) - self.error_events - self.refused - sum(r.ok for r in self.results)

    @property
    def max_latency_s(self) -> float:
        return max((r.latency_s for r in self.results), default=0.0)


def run_midstream(stack: RouterStack, kind: str, requests: int = 6) -> MidStream:
    """A stream that stalls or dies after its first frames: the model is committed, no fallback.

    Pinned to local-a so the breaker of the others is irrelevant; the client must get a terminal
    error event (not hang): within timeout_s for a stall, at once for a dropped connection.
    """
    stack.heal()
    key = {"stall": "stall_after_chunks", "die": "die_after_chunks"}[kind]
    stack.script({"model": "local-a", key: 2})

    async def go() -> list[Result]:
        async with httpx.AsyncClient(timeout=30) as c:
            return [await call(c, stack.url, f"mid-{kind} {i}: a long answer please", stream=True,
                               model="local-a") for i in range(requests)]

    try:
        return MidStream(kind, asyncio.run(go()))
    finally:
        if stack.fake:
            stack.fake.clear()


@dataclass(slots=True)
class Recovery:
    outage_s: float
    recovery_s: float | None
    during_outage_success: float
    bound_s: float


def measure_recovery(stack: RouterStack, outage_s: float = 3.0, rate: float = 20.0,
                     max_wait_s: float | None = None) -> Recovery:
    """Both local models down (503) for `outage_s` under steady auto traffic, then local-a heals.

    Returns how long after the heal local-a first serves a request again. The breaker bounds it
    by the cooldown it is in when the heal happens (at most `cooldown_max_s`) plus one request gap.
    """
    stack.heal()
    stack.script({"model": "local-a", "status": 503}, {"model": "local-b", "status": 503})
    bound = stack.cooldown_max_s + 2.0 / rate
    wait = max_wait_s if max_wait_s is not None else bound + 2.0

    async def go() -> tuple[list[Result], float | None]:
        during: list[Result] = []
        healed_at: float | None = None
        recovered: float | None = None
        t0 = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as c:
            i = 0
            while True:
                now = time.monotonic()
                if healed_at is None and now - t0 >= outage_s:
                    assert stack.fake is not None
                    stack.fake.script("local-a")  # a plain script: healthy again
                    healed_at = time.monotonic()
                if healed_at is not None and now - healed_at > wait:
                    break
                r = await call(c, stack.url, f"recovery {i}: hello")
                i += 1
                if healed_at is None:
                    during.append(r)
                elif r.ok and r.model == "local-a":
                    recovered = time.monotonic() - healed_at
                    break
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        return during, recovered

    try:
        during, recovered = asyncio.run(go())
    finally:
        if stack.fake:
            stack.fake.clear()
    share = sum(r.ok for r in during) / len(during) if during else 0.0
    return Recovery(outage_s, recovered, share, bound)


def ledger_rows(store_url: str, columns: str = "request_id, status, error_class, model_id") -> list[tuple[Any, ...]]:
    from wilton_core.store import open_store

    store = open_store(store_url, migrate=False)
    try:
        return store.query(f"SELECT {columns} FROM ledger")
    finally:
        store.close()


def machine() -> str:
    cores = os.cpu_count() or 0
    return f"{platform.system()} {platform.machine()}, {cores} cores, Python {platform.python_version()}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=60, help="client requests per scenario (default 60)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--only", default="", help="comma-separated scenario keys (also: midstream, recovery)")
    p.add_argument("--outage-s", type=float, default=3.0, help="outage length for the recovery figure")
    p.add_argument("--workdir", default=None, help="keep logs and the store here (default: a temp dir)")
    args = p.parse_args(list(argv) if argv is not None else None)
    only = {k for k in args.only.split(",") if k}
    tmp = tempfile.TemporaryDirectory(prefix="wilton-faults-") if args.workdir is None else None
    workdir = Path(args.workdir) if args.workdir else Path(tmp.name)  # type: ignore[union-attr]
    print(f"# fault injection, {time.strftime('%Y-%m-%d %H:%M')}, {machine()}")
    print(f"# models: {', '.join(MODELS)}; timeout_s={MODEL_TIMEOUT_S}, cooldown_s={COOLDOWN_S}, "
          f"cooldown_max_s={COOLDOWN_MAX_S}; {args.requests} requests per scenario, concurrency {args.concurrency}")
    failed = False
    with RouterStack(workdir).start() as stack:
        print("\n| scenario | healthy models | requests | succeeded | p50 s | p99 s | served by |")
        print("|---|---|---|---|---|---|---|")
        for sc in SCENARIOS:
            if only and sc.key not in only:
                continue
            res = run_scenario(stack, sc, args.requests, args.concurrency)
            failed |= res.success_share < 1.0
            served = ", ".join(f"{m} {n}" for m, n in sorted(res.served_by.items()))
            print(f"| {sc.title} | {', '.join(sc.healthy)} | {len(res.results)} | {_pct(res.success_share)} | "
                  f"{res.latency(0.5):.3f} | {res.latency(0.99):.3f} | {served} |", flush=True)
            for r in res.failures[:3]:
                print(f"|   failure: {r.status} {r.error[:120]} | | | | | | |")
        if not only or "midstream" in only:
            print("\n| after the first byte (no fallback possible) | streams | error event | 503 (breaker open) "
                  "| hung or silent | max s |")
            print("|---|---|---|---|---|---|")
            for kind in ("stall", "die"):
                ms = run_midstream(stack, kind)
                failed |= ms.hung_or_silent > 0 or ms.error_events == 0
                print(f"| stream {kind}s after 2 frames (timeout_s {MODEL_TIMEOUT_S}) | {len(ms.results)} | "
                      f"{ms.error_events} | {ms.refused} | {ms.hung_or_silent} | {ms.max_latency_s:.3f} |", flush=True)
        if not only or "recovery" in only:
            rec = measure_recovery(stack, args.outage_s)
            failed |= rec.recovery_s is None or rec.recovery_s > rec.bound_s or rec.during_outage_success < 1.0
            got = "never" if rec.recovery_s is None else f"{rec.recovery_s:.2f} s"
            print(f"\nrecovery: both local models down {rec.outage_s:.1f} s under 20 req/s "
                  f"({_pct(rec.during_outage_success)} of requests succeeded meanwhile); local-a healed; "
                  f"first served by it again after {got} (bound: cooldown_max_s + one request gap "
                  f"= {rec.bound_s:.2f} s)")
        time.sleep(stack.flush_s * 2)
        log = stack.log_text()
        leaked = [k for k in API_KEYS.values() if k in log]
        if leaked:
            failed = True
            print("!! an API key appears in the router log")
    if tmp is not None:
        tmp.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
