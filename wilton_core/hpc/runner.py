"""Run a stored batch through the router: bounded concurrency, highest priority first, one result per task.

Tasks go to the router's OpenAI-compatible endpoint like any client's requests, so the batch
is routed, balanced (phi) and recorded in the ledger exactly like live traffic. What the router
chose comes back in its x-wilton-* headers; the cost is computed from the prices the router
lists on /v1/models.

When the router cannot be reached at all, the task in hand goes back to "pending" and the run
stops with `RouterUnreachable`: nothing is marked failed for a reason that is not the task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wilton_core.errors import WiltonError
from wilton_core.hpc.model import TaskResult
from wilton_core.hpc.repo import PendingTask, TaskRepo

__all__ = ["BatchBusy", "BatchRunner", "Prices", "RouterUnreachable", "RunOutcome", "parse_prices", "parse_reply"]

Prices = Mapping[str, tuple[float, float]]   # model id -> (input, output) USD per million tokens
OnResult = Callable[[PendingTask, TaskResult], None]


class RouterUnreachable(WiltonError):
    """The router did not answer at all; the batch's unfinished tasks stay pending."""


class BatchBusy(WiltonError):
    """Another live runner holds the batch's lease."""


@dataclass(slots=True, frozen=True)
class RunOutcome:
    batch_id: str
    ran: int
    status: str   # the batch status after the run: "done" | "pending"


def parse_prices(models_payload: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Prices per model id from the router's GET /v1/models (its "wilton" object)."""
    out: dict[str, tuple[float, float]] = {}
    for m in models_payload.get("data") or []:
        w = m.get("wilton") or {}
        if "input_cost_per_mtok" in w:
            out[str(m["id"])] = (float(w.get("input_cost_per_mtok") or 0.0), float(w.get("output_cost_per_mtok") or 0.0))
    return out


def _error_message(body: bytes) -> str:
    """`code: message` from OpenAI's error JSON (the code says why at a glance), else the raw body."""
    try:
        data = json.loads(body)
        err = data.get("error", {}) if isinstance(data, dict) else {}
        msg, code = err.get("message"), err.get("code")
    except (ValueError, AttributeError):
        msg = code = None
    text = str(msg or body[:200].decode("utf-8", "replace") or "no body")
    return f"{code}: {text}" if isinstance(code, str) and code else text


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str) and content:
        return content
    calls = message.get("tool_calls")
    if calls:
        return json.dumps(calls, ensure_ascii=False)
    return content if isinstance(content, str) else ""


def parse_reply(status: int, headers: Mapping[str, str], body: bytes, latency_s: float,
                prices: Prices) -> TaskResult:
    """A stored result from the router's answer (pure)."""
    h = {k.lower(): v for k, v in headers.items()}
    model = h.get("x-wilton-model")
    fb = h.get("x-wilton-fallbacks", "")
    diff = h.get("x-wilton-difficulty")
    common: dict[str, Any] = dict(
        model_id=model, tier=h.get("x-wilton-tier"),
        is_local=None if "x-wilton-local" not in h else h["x-wilton-local"] == "true",
        routed_intent=h.get("x-wilton-intent"), difficulty=float(diff) if diff else None,
        fallbacks=0 if fb in ("", "0") else len(fb.split(",")), latency_s=latency_s, http_status=status)
    if status != 200:
        return TaskResult(status="error", error=f"HTTP {status}: {_error_message(body)}"[:500], **common)
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        tin, tout = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return TaskResult(status="error", error=f"malformed reply from the router: {type(e).__name__}", **common)
    pin, pout = prices.get(model or "", (0.0, 0.0))
    return TaskResult(status="ok", text=_text(choice.get("message") or {}), tokens_in=tin, tokens_out=tout,
                      cost_usd=(tin * pin + tout * pout) / 1e6, **common)


class BatchRunner:
    def __init__(self, repo: TaskRepo, router_url: str, *, concurrency: int = 4, transport: Any = None,
                 clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.perf_counter,
                 owner: str | None = None, lease_ttl_s: float = 30.0, request_timeout_s: float = 120.0,
                 api_key: str | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.repo = repo
        self.router_url = router_url.rstrip("/")
        self.concurrency = concurrency
        self.transport = transport
        self.clock = clock
        self.timer = timer
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_ttl_s = lease_ttl_s
        self.request_timeout_s = request_timeout_s
        # the router's client key (docs/access.md): Settings.router_api_key, passed by the CLI and worker
        self.api_key = api_key

    async def _db(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        # the store is synchronous: keep its round trips off the event loop
        return await asyncio.to_thread(fn, *args, **kw)

    async def run(self, batch_id: str, on_result: OnResult | None = None) -> RunOutcome:
        import httpx

        if not await self._db(self.repo.acquire, batch_id, self.owner, now=self.clock(), ttl_s=self.lease_ttl_s):
            raise BatchBusy(f"batch {batch_id} is being run by another live runner (or does not exist / is done)")
        renewer = asyncio.create_task(self._renew(batch_id))
        ran = 0
        try:
            auth = {"authorization": f"Bearer {self.api_key}"} if self.api_key else None
            async with httpx.AsyncClient(base_url=self.router_url, transport=self.transport, headers=auth,
                                         timeout=httpx.Timeout(self.request_timeout_s, connect=5.0)) as client:
                prices = await self._prices(client)
                queue = await self._db(self.repo.pending, batch_id)
                it = iter(queue)
                stop = asyncio.Event()
                results = await asyncio.gather(
                    *(self._worker(client, it, prices, stop, on_result) for _ in range(self.concurrency)),
                    return_exceptions=True)
                ran = sum(r for r in results if isinstance(r, int))
                for r in results:
                    if isinstance(r, BaseException):
                        raise r
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            status = await self._db(self.repo.release, batch_id, self.owner, now=self.clock())
        return RunOutcome(batch_id, ran, status)

    async def _renew(self, batch_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            await self._db(self.repo.renew, batch_id, self.owner, now=self.clock(), ttl_s=self.lease_ttl_s)

    async def _prices(self, client: Any) -> dict[str, tuple[float, float]]:
        import httpx

        try:
            r = await client.get("/v1/models")
        except httpx.TransportError as e:
            raise RouterUnreachable(f"router not reachable at {self.router_url} ({type(e).__name__})") from None
        if r.status_code != 200:
            raise RouterUnreachable(f"router at {self.router_url} answered GET /v1/models with HTTP {r.status_code}")
        return parse_prices(r.json())

    async def _worker(self, client: Any, it: Any, prices: Prices, stop: asyncio.Event,
                      on_result: OnResult | None) -> int:
        import httpx

        ran = 0
        while not stop.is_set():
            task: PendingTask | None = next(it, None)
            if task is None:
                break
            if not await self._db(self.repo.start_task, task.batch_id, task.idx, now=self.clock()):
                continue  # someone else took it
            t0 = self.timer()
            try:
                r = await client.post("/v1/chat/completions", json=task.request)
                result = parse_reply(r.status_code, r.headers, r.content, self.timer() - t0, prices)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                stop.set()
                await self._db(self.repo.requeue, task.batch_id, task.idx)
                raise RouterUnreachable(
                    f"router not reachable at {self.router_url} ({type(e).__name__}); the unfinished tasks are "
                    f"kept: run `wiltonctl hpc resume {task.batch_id}`") from None
            except httpx.TimeoutException:
                result = TaskResult(status="error", latency_s=self.timer() - t0,
                                    error=f"timeout: no answer within {self.request_timeout_s:g}s")
            except httpx.TransportError as e:
                result = TaskResult(status="error", latency_s=self.timer() - t0,
                                    error=f"transport: {type(e).__name__}")
            await self._db(self.repo.finish_task, task.batch_id, task.idx, result, now=self.clock())
            ran += 1
            if on_result is not None:
                on_result(task, result)
        return ran
