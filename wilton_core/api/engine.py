"""The router in your process: the gateway's own code path (decide → fallback chain → ledger), no HTTP.

`InProcessRouter` wires the same pieces `wilton-router` does — settings → config → store →
`LedgerWriter` → `RouterService` — so a request made from Python is routed, retried, counted
against phi and written to the ledger exactly like one that came over the wire.

Event loops: a `RouterService` holds loop-bound things (its control-refresh task, pooled HTTP
clients). The store, the ledger writer (a thread), the difficulty scorer and the latency tracker
are loop-independent and shared. When a call arrives on a different running loop than the last
one (a script calling `asyncio.run` twice), the services are rebuilt for it; the old loop's
are abandoned, since their tasks died with that loop. Use one router from one loop at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from wilton_core.api.result import ChatResult
from wilton_core.config import ModelConfig, StackConfig, default_config, load_config
from wilton_core.types import Ledger

if TYPE_CHECKING:
    import httpx

    from wilton_core.core.classify import Scorer
    from wilton_core.core.latency import LatencyTracker
    from wilton_core.providers.base import Provider
    from wilton_core.router.service import RouterService
    from wilton_core.settings import Settings
    from wilton_core.store.base import Store
    from wilton_core.store.ledger_writer import LedgerWriter

__all__ = ["FlushableLedger", "InProcessRouter"]

log = logging.getLogger("wilton.inprocess")


class FlushableLedger(Ledger, Protocol):
    """A ledger this router can wait on (`InProcessRouter.flush`); its services only submit to it.

    One writer serves every service built here (one per event loop, plus transient models), so
    no single service starts or stops it: this router does, when it opened it."""

    def flush(self, timeout: float | None = None) -> bool: ...


@dataclass(slots=True)
class _LoopState:
    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock
    service: RouterService | None = None
    transients: dict[str, RouterService] = field(default_factory=dict)


class InProcessRouter:
    """Route OpenAI-format chat requests in-process through `RouterService`.

    Every argument is optional; the defaults are what `wilton-router` uses: settings from the
    environment (`WILTON_*`), the config file they name (else the embedded defaults), the store at
    `settings.resolved_store_url()`. Pass `config=`, `store=`, `transport=` (an httpx transport
    every provider uses: tests fake upstreams with it) or `providers=` to override.
    Nothing is opened until the first call (or `await start()`).
    """

    def __init__(
        self,
        config: StackConfig | None = None,
        *,
        settings: Settings | None = None,
        store: Store | None = None,
        ledger: FlushableLedger | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        providers: Mapping[str, Provider] | None = None,
        scorer: Scorer | None = None,
        replica: str | None = None,
    ) -> None:
        self._config = config
        self._settings = settings
        self._store = store
        self._owns_store = store is None
        self._ledger = ledger
        self._writer: LedgerWriter | None = None  # the writer this router opened (and stops), if any
        self._environ = environ
        self._transport = transport
        self._providers = dict(providers or {})
        self._scorer = scorer
        self._replica = replica
        self._latency: LatencyTracker | None = None
        self._state: _LoopState | None = None
        self._shared_lock = threading.Lock()
        self._closed = False

    # ---- configuration (lazy: reading a file is all it costs) ------------------------------

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from wilton_core.settings import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def config(self) -> StackConfig:
        if self._config is None:
            path = self.settings.config
            self._config = load_config(path) if path else default_config(self._environ)
        return self._config

    @property
    def replica(self) -> str:
        if self._replica is None:
            # one stable name per host: library processes come and go, their ledger rows should group
            self._replica = f"{self.settings.replica_id}-inprocess"
        return self._replica

    @property
    def latency(self) -> LatencyTracker:
        """The tracker every service built here records into (`get_latency_tracker()`)."""
        if self._latency is None:
            from wilton_core.core.latency import LatencyTracker

            self._latency = LatencyTracker(self.config.latency_targets)
        return self._latency

    @property
    def store(self) -> Store | None:
        """The store, once opened (first call or `start()`)."""
        return self._store

    @property
    def ledger(self) -> FlushableLedger | None:
        return self._ledger

    @property
    def service(self) -> RouterService | None:
        """The service of the current loop's state, if one was started."""
        return self._state.service if self._state else None

    # ---- lifecycle --------------------------------------------------------------------------

    def _open_shared(self) -> None:
        """Store, ledger writer and scorer: opened once, whatever loop asks first (runs in a thread)."""
        with self._shared_lock:
            if self._closed:
                raise RuntimeError("this InProcessRouter is closed")
            if self._store is None:
                from wilton_core.store import open_store

                self._store = open_store(self.settings.resolved_store_url())
            if self._ledger is None:
                from wilton_core.store.ledger_writer import LedgerWriter

                if self._settings is not None or self._owns_store:
                    s = self.settings
                    writer = LedgerWriter(self._store, flush_interval_s=s.ledger_flush_s, batch_size=s.ledger_batch)
                else:
                    writer = LedgerWriter(self._store)
                writer.start()
                self._ledger = self._writer = writer
            if self._scorer is None:
                from wilton_core.core.difficulty import load_default_scorer

                self._scorer = load_default_scorer()
            _ = self.latency, self.replica

    def _build(self, config: StackConfig, *, with_store: bool) -> RouterService:
        from wilton_core.providers.factory import make_provider
        from wilton_core.router.service import RouterService

        providers: dict[str, Provider] = {}
        for m in config.models:
            p = self._providers.get(m.id)
            if p is None and self._transport is not None:
                p = make_provider(m, transport=self._transport, environ=self._environ, routing=config.routing)
            if p is not None:
                providers[m.id] = p
        svc = RouterService(config, store=self._store if with_store else None, ledger=self._ledger,
                            providers=providers, environ=self._environ, replica=self.replica,
                            scorer=self._scorer)
        # one tracker for the process: get_latency_tracker() sees every in-process request
        svc.latency = self.latency
        return svc

    async def _loop_state(self) -> _LoopState:
        if self._closed:
            raise RuntimeError("this InProcessRouter is closed")
        loop = asyncio.get_running_loop()
        st = self._state
        if st is None or st.loop is not loop:
            st = self._state = _LoopState(loop, asyncio.Lock())
        if st.service is None:
            async with st.lock:
                if st.service is None:
                    await asyncio.to_thread(self._open_shared)
                    svc = self._build(self.config, with_store=True)
                    await svc.start()
                    st.service = svc
        return st

    async def start(self) -> None:
        """Open the store and start the service now rather than on the first call."""
        await self._loop_state()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until every request answered so far is in the ledger; False on timeout."""
        return True if self._ledger is None else bool(self._ledger.flush(timeout))

    async def aclose(self) -> None:
        """Stop the services of this loop, flush the ledger, close what this router opened."""
        st, self._state = self._state, None
        if st is not None and st.loop is asyncio.get_running_loop():
            for svc in [st.service, *st.transients.values()]:
                if svc is not None:
                    await svc.stop()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Synchronous close (for atexit and scripts): flush and stop the ledger, close the store."""
        with self._shared_lock:
            if self._closed:
                return
            self._closed = True
            self._state = None
            if self._writer is not None:
                left = self._writer.stop(30.0)
                if left:
                    log.warning("in-process router closed with %d ledger records unwritten", left)
            if self._store is not None and self._owns_store:
                self._store.close()

    # ---- requests ---------------------------------------------------------------------------

    async def complete(self, body: Mapping[str, Any], *, prefer: Sequence[str] = (),
                       fallback: bool = True) -> ChatResult:
        """Route one non-streaming chat request (an OpenAI chat-completions body).

        `prefer`: configured model ids to try first (in order), then — when `fallback` — the
        router's automatic chain. Raises `NoHealthyModelError` when nothing could answer (that
        request is in the ledger too), `RequestError` for a bad request or unknown model.
        """
        st = await self._loop_state()
        svc = st.service
        assert svc is not None
        from wilton_core.router.wire import validate_chat_request

        started = time.perf_counter()
        req = dict(body)
        req.setdefault("model", "auto")
        req.pop("stream", None)
        validate_chat_request(req)  # the gateway's checks: a bad body is a RequestError, not a KeyError
        route = svc.decide(req, started, prefer=prefer, fallback=fallback)
        out = await svc.complete(req, route)
        return ChatResult.of(out, time.perf_counter() - started)

    async def complete_on(self, model: ModelConfig, body: Mapping[str, Any]) -> ChatResult:
        """Route to a model the config does not declare (e.g. an Ollama name): same executor,
        same ledger and latency tracker, no fallback. Services are cached per model id."""
        st = await self._loop_state()
        svc = st.transients.get(model.id)
        if svc is None:
            async with st.lock:
                svc = st.transients.get(model.id)
                if svc is None:
                    cfg = StackConfig(models=[model], routing=self.config.routing,
                                      latency_targets=self.config.latency_targets)
                    svc = self._build(cfg, with_store=False)
                    await svc.start()
                    st.transients[model.id] = svc
        from wilton_core.router.wire import validate_chat_request

        started = time.perf_counter()
        req = {**body, "model": model.id}
        req.pop("stream", None)
        validate_chat_request(req)
        out = await svc.complete(req, svc.decide(req, started))
        return ChatResult.of(out, time.perf_counter() - started)

    @property
    def transport(self) -> httpx.AsyncBaseTransport | None:
        return self._transport

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment providers and per-intent defaults read (os.environ unless given)."""
        return os.environ if self._environ is None else self._environ
