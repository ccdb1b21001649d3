"""The router service: decide, call with fallback, record. No HTTP here (see app.py, render.py).

A thin facade over the router's jobs, each in its own module, all sharing one `RouterState`:
  decide.py     the routing decision (pure core + each model's health) → `Route`
  execute.py    the chain walk (fallback.py) → typed outcomes (`ChatOutcome`, `ChunkStream`, ...)
  recorder.py   one ledger row (and tracing span) for every outcome
  lifecycle.py  start/stop and the polling that keeps the control state and scorer fresh
  health.py     the health snapshot published to the store, and the model probes
  listing.py    /v1/models and /readyz
Everything on the request path reads memory only; ledger rows go to a background writer.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wilton_core.access.caller import Caller
from wilton_core.config import RoutingConfig, StackConfig
from wilton_core.core.classify import Scorer
from wilton_core.core.control_state import ControlState
from wilton_core.core.health import Breaker
from wilton_core.core.latency import LatencyTracker
from wilton_core.providers.base import Provider
from wilton_core.providers.factory import make_provider
from wilton_core.router import health, listing
from wilton_core.router.decide import Decider
from wilton_core.router.execute import Execution
from wilton_core.router.fallback import FallbackExecutor, ModelRuntime
from wilton_core.router.lifecycle import Lifecycle
from wilton_core.router.recorder import Recorder
from wilton_core.router.results import ChatOutcome, ChunkStream, EmbedResult, Route, StreamFailure
from wilton_core.router.state import LedgerWorker, RouterState
from wilton_core.router.tracing import Tracing, tracing_from_env
from wilton_core.store.base import Store
from wilton_core.types import Ledger

if TYPE_CHECKING:
    from wilton_core.router.shadow import ShadowJudge

__all__ = ["ChatOutcome", "ChunkStream", "EmbedResult", "Route", "RouterService", "StreamFailure"]


class RouterService:
    def __init__(
        self,
        config: StackConfig,
        *,
        store: Store | None = None,
        ledger: Ledger | None = None,
        writer: LedgerWorker | None = None,
        providers: Mapping[str, Provider] | None = None,
        environ: Mapping[str, str] | None = None,
        replica: str = "",
        scorer: Scorer | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        overhead_observer: Callable[[float], None] | None = None,
        probe_models: bool = False,
        capture_prompts: bool = False,
        tracing: Tracing | None = None,
    ) -> None:
        """`ledger`: where rows go. `writer`: the background writer behind it, which this service
        starts, stops (flushing) and reports on; leave it None when someone else owns the writer."""
        self.config = config
        self.store = store
        env = os.environ if environ is None else environ
        rng = rng or random.Random()
        runtimes: dict[str, ModelRuntime] = {}
        provided = providers or {}
        routing = config.routing
        for m in config.models:
            provider = provided.get(m.id) or make_provider(m, environ=env, routing=routing)
            breaker = Breaker(routing.cooldown_failures, routing.cooldown_s, routing.cooldown_max_s)
            runtimes[m.id] = ModelRuntime(m, provider, breaker, m.is_configured(env))
        self.state = RouterState(config, runtimes, LatencyTracker(config.latency_targets), clock, replica,
                                 clock(), ControlState(phi_target=routing.phi_target), scorer)
        # h6: OpenTelemetry, opt-in (OTEL_EXPORTER_OTLP_ENDPOINT); None = off, and nothing is imported
        self.tracing = tracing if tracing is not None else tracing_from_env(env)
        self.executor = FallbackExecutor(runtimes, routing, clock=time.monotonic, rng=rng)
        self.recorder = Recorder(self.state, ledger, self.tracing)
        self.decider = Decider(self.state, self.recorder, rng=rng, environ=env, capture_prompts=capture_prompts)
        self.execution = Execution(self.state, self.executor, self.recorder, overhead_observer)
        self.lifecycle = Lifecycle(self.state, store=store, writer=writer, tracing=self.tracing, environ=env,
                                   probe_models=probe_models)

    # ---- what the HTTP layer and the in-process API read --------------------------------------

    @property
    def routing(self) -> RoutingConfig:
        return self.config.routing

    @property
    def runtimes(self) -> dict[str, ModelRuntime]:
        return self.state.runtimes

    @property
    def control(self) -> ControlState:
        return self.state.control

    @property
    def latency(self) -> LatencyTracker:
        return self.state.latency

    @latency.setter
    def latency(self, tracker: LatencyTracker) -> None:  # one tracker shared by several services
        self.state.latency = tracker

    @property
    def ledger(self) -> Ledger | None:
        return self.recorder.ledger

    @property
    def replica(self) -> str:
        return self.state.replica

    @property
    def started_at(self) -> float:
        return self.state.started_at

    @property
    def model_status(self) -> dict[str, str]:
        return self.state.model_status

    @property
    def capture_prompts(self) -> bool:
        return self.decider.capture_prompts

    @property
    def shadow(self) -> ShadowJudge | None:
        return self.state.shadow

    @shadow.setter
    def shadow(self, judge: ShadowJudge | None) -> None:
        self.state.shadow = judge

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.lifecycle.start()

    async def stop(self) -> None:
        await self.lifecycle.stop()

    async def refresh_control(self) -> None:
        await self.lifecycle.refresh_control()

    # ---- requests -----------------------------------------------------------------------------

    def new_request_id(self, prefix: str = "chatcmpl-") -> str:
        return self.decider.new_request_id(prefix)

    def decide(self, body: dict[str, Any], started: float, caller: Caller | None = None,
               request_id: str | None = None, *, prefer: Sequence[str] = (), fallback: bool = True) -> Route:
        return self.decider.decide(body, started, caller, request_id, prefer=prefer, fallback=fallback)

    async def complete(self, body: dict[str, Any], route: Route) -> ChatOutcome:
        return await self.execution.complete(body, route)

    async def stream(self, body: dict[str, Any], route: Route) -> ChunkStream:
        return await self.execution.stream(body, route)

    async def embed(self, model: str | None, inputs: list[str], dimensions: int | None, request_id: str,
                    started: float, caller: Caller | None = None) -> EmbedResult:
        return await self.execution.embed(model, inputs, dimensions, request_id, started, caller)

    # ---- what it says about itself ------------------------------------------------------------

    def health_snapshot(self) -> dict[str, Any]:
        return health.health_snapshot(self.state, self.lifecycle.writer)

    def list_models(self, caller: Caller | None = None) -> dict[str, Any]:
        return listing.list_models(self.state, caller)

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        return listing.get_model(self.state, model_id)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return listing.readiness(self.state, self.lifecycle.writer)
