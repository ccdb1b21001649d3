"""The router service: decide, call with fallback, record. No HTTP here (see app.py).

Everything on the request path reads memory only: the control state (refreshed from the store
about once a second by a background task), per-model latency statistics and breakers this
process keeps itself. Ledger writes go to a background writer and never block a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from wilton_core.access.caller import Caller
from wilton_core.config import ModelConfig, StackConfig
from wilton_core.core.classify import classify_request
from wilton_core.core.control_state import ControlState
from wilton_core.core.health import Breaker
from wilton_core.core.intent import INTENT_CAPABILITY, Intent, intent_defaults_from_env
from wilton_core.core.latency import LatencyTracker
from wilton_core.core.messages import estimate_tokens, has_images, transcript
from wilton_core.core.preferences import ModelFacts, apply_preferences, preferred_ids
from wilton_core.core.selector import (
    ControlView,
    ModelView,
    RequestView,
    SelectorWeights,
    choose,
    ineligible_reason,
)
from wilton_core.errors import (
    NoHealthyModelError,
    ProviderError,
    RequestError,
    UnavailableError,
    UnknownModelError,
)
from wilton_core.providers.base import Provider
from wilton_core.providers.factory import make_provider
from wilton_core.router.capabilities import pinned_refusal
from wilton_core.router.fallback import Attempt, FallbackExecutor, ModelRuntime
from wilton_core.router.tracing import Tracing, tracing_from_env
from wilton_core.store.base import Store
from wilton_core.types import LedgerRecord, Usage

if TYPE_CHECKING:
    from wilton_core.core.difficulty_versions import ActiveScorer
    from wilton_core.router.shadow import ShadowJudge, ShadowTicket

__all__ = ["ChatResult", "ChunkStream", "EmbedResult", "Outcome", "RouterService", "StreamFailure", "StreamOutcome"]

log = logging.getLogger("wilton.router")

# `model` values that mean "let the stack choose", optionally restricted to one class
AUTO_MODELS = {"auto": None, "": None, "local": True, "api": False}


@dataclass(slots=True)
class Decision:
    request_id: str
    chain: list[str]
    intent: str
    difficulty: float
    started: float  # perf_counter at arrival
    decide_s: float
    prompt: str | None = None  # kept only when prompt capture is on
    # access (issue 14): who asked; non-admin callers see no fallback error detail
    key_id: str = ""
    local_only: bool = False
    admin: bool = True
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()
    span: Any = None  # the request's tracing span (RequestSpan), only when tracing is on
    shadow: ShadowTicket | None = None  # issue 16: drawn for shadow judging (router/shadow.py)


@dataclass(slots=True)
class Outcome:
    """A finished non-streaming request, ready for the wire."""

    body: bytes
    headers: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class StreamOutcome:
    headers: list[tuple[bytes, bytes]]
    chunks: AsyncIterator[bytes]


@dataclass(slots=True)
class ChatResult:
    """A finished non-streaming request as data (for endpoints that translate it to another API)."""

    data: dict[str, Any]  # OpenAI chat.completion: id = the request id, model = the model id, usage sanitised
    usage: Usage
    headers: list[tuple[bytes, bytes]]
    model: ModelConfig


@dataclass(slots=True)
class EmbedResult:
    vectors: list[list[float]]
    usage: Usage
    headers: list[tuple[bytes, bytes]]
    model: ModelConfig


@dataclass(slots=True)
class StreamFailure:
    """The last item of a chunk stream that broke after its first chunk (the ledger row is written)."""

    code: str
    message: str
    type: str  # "upstream_error" (the model's stream failed) or "server_error" (ours)


@dataclass(slots=True)
class ChunkStream:
    """A committed stream as data: OpenAI chunk dicts (id = request id, model = model id), the last
    one with data carrying the sanitised `usage` and empty choices, or a `StreamFailure` last."""

    headers: list[tuple[bytes, bytes]]
    model: ModelConfig
    chunks: AsyncGenerator[dict[str, Any] | StreamFailure, None]  # aclose() it when done early


class RouterService:
    def __init__(
        self,
        config: StackConfig,
        *,
        store: Store | None = None,
        ledger: Any | None = None,
        providers: Mapping[str, Provider] | None = None,
        environ: Mapping[str, str] | None = None,
        replica: str = "",
        scorer: Any | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        overhead_observer: Callable[[float], None] | None = None,
        probe_models: bool = False,
        capture_prompts: bool = False,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.routing = config.routing
        self.store = store
        self.ledger = ledger
        self.replica = replica
        self._clock = clock
        self._rng = rng or random.Random()
        self._ids = random.Random()  # request ids; never the decision rng, which tests may seed
        self._environ = os.environ if environ is None else environ
        self._scorer = scorer
        self._active_scorer: ActiveScorer | None = None
        self._observe_overhead = overhead_observer
        self.probe_models = probe_models
        self.capture_prompts = capture_prompts
        self.control = ControlState(phi_target=self.routing.phi_target)
        self.control_loaded_at: float | None = None
        self.latency = LatencyTracker(config.latency_targets)
        self.runtimes: dict[str, ModelRuntime] = {}
        provided = providers or {}
        for m in config.models:
            provider = provided.get(m.id) or make_provider(m, environ=self._environ, routing=self.routing)
            breaker = Breaker(self.routing.cooldown_failures, self.routing.cooldown_s, self.routing.cooldown_max_s)
            self.runtimes[m.id] = ModelRuntime(m, provider, breaker, m.is_configured(self._environ))
        self.weights = SelectorWeights.from_routing(self.routing)
        self._lat_cache: dict[str, tuple[float | None, float | None, float | None]] = {}
        self._lat_cache_at = -1.0
        self.executor = FallbackExecutor(self.runtimes, self.routing, clock=time.monotonic, rng=self._rng)
        self.model_status: dict[str, str] = {}  # registry status by model id ("failed" excludes)
        self._is_local = {m.id: m.is_local for m in config.models}
        self.preferences = _intent_preferences(config, self._environ)
        self._tasks: list[asyncio.Task[None]] = []
        self.started_at = clock()
        # h6: OpenTelemetry, opt-in (OTEL_EXPORTER_OTLP_ENDPOINT); None = off, and nothing is imported
        self.tracing = tracing if tracing is not None else tracing_from_env(self._environ)
        # issue 16 §2: shadow judging, opt-in ([learning] shadow_share); set by the app's wiring
        self.shadow: ShadowJudge | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._scorer is None:
            from wilton_core.core.difficulty import load_default_scorer

            self._scorer = load_default_scorer()
            if self.store is not None:
                # The default scorer follows the store's active learned version (route learn).
                from wilton_core.core.difficulty_versions import ActiveScorer
                from wilton_core.store.difficulty_models import DifficultyVersions

                self._active_scorer = ActiveScorer(DifficultyVersions(self.store), self._scorer)
        self._scorer.score([{"role": "user", "content": "warm up"}])  # load now, not on request 1
        if self.ledger is not None and hasattr(self.ledger, "start"):
            self.ledger.start()
        if self.store is not None:
            await self.refresh_control()
            self._tasks.append(asyncio.create_task(self._refresh_loop(), name="control-refresh"))
        if self.probe_models:
            self._tasks.append(asyncio.create_task(self._probe_loop(), name="model-probes"))

    async def stop(self) -> None:
        if self.shadow is not None:
            await self.shadow.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for rt in self.runtimes.values():
            with contextlib.suppress(Exception):
                await rt.provider.aclose()
        if self.ledger is not None and hasattr(self.ledger, "stop"):
            # every request answered so far is in the ledger once this returns
            await asyncio.to_thread(self.ledger.stop, 30.0)
        if self.tracing is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.tracing.shutdown)

    async def refresh_control(self) -> None:
        """Pull the control state and model status from the store (in a thread: never on the loop)."""
        if self.store is None:
            return
        store = self.store
        try:
            state = await asyncio.to_thread(store.get_control_state)
            if state is not None:
                self.control = state
                self.control_loaded_at = self._clock()
            self.model_status = await asyncio.to_thread(self._load_model_status)
            await asyncio.to_thread(self._publish_health)
        except Exception as e:  # a slow or absent store must never take routing down
            log.warning("control state refresh failed: %s", type(e).__name__)
        if self._active_scorer is not None:  # a new learned version, loaded only when it changes
            try:
                self._scorer = await asyncio.to_thread(self._active_scorer.refresh, self._scorer)
            except Exception as e:  # keep routing with the scorer we have
                log.warning("difficulty model refresh failed: %s", type(e).__name__)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.routing.control_refresh_s)
            await self.refresh_control()

    def _load_model_status(self) -> dict[str, str]:
        from wilton_core.registry.registry import StatusTable

        assert self.store is not None
        return {mid: r.status for mid, r in StatusTable(self.store).load().items()}

    async def _probe_loop(self) -> None:
        """Test every configured model once at start, then re-test failed ones on their schedule.

        Probes are short real generations (registry.test_model); results go to the store, where
        every replica and `wiltonctl models list` see them. Live traffic is guarded separately by
        the breakers; this keeps models that never worked out of the chain.
        """
        from wilton_core.registry.registry import ModelRegistry, RetestPolicy

        policy = RetestPolicy(failed_base_s=30.0, failed_max_s=300.0, rate_limited_s=120.0,
                              available_every_s=None)
        # probes use their own short-lived clients (test_model closes what it used)
        registry = ModelRegistry(self.config, store=self.store, environ=self._environ, clock=self._clock)
        while True:
            try:
                due = await asyncio.to_thread(registry.due, self._clock(), policy)
                if due:
                    results = await registry.test(due, timeout=30.0)
                    self.model_status.update({mid: r.status for mid, r in results.items()})
            except Exception as e:  # a probe problem must never take routing down
                log.warning("model probes failed: %s", type(e).__name__)
            await asyncio.sleep(15.0)

    def health_snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        wall = self._clock()
        models = {}
        for mid, rt in self.runtimes.items():
            b = rt.breaker
            models[mid] = {
                # rate limited is healthy (it answers, just not now): alerts on health must not fire on 429s
                "healthy": rt.configured and not b.broken(now),
                "configured": rt.configured,
                "breaker": b.state(now),
                "cooldown_until": wall + b.cooldown_remaining(now) if b.cooldown_remaining(now) else 0.0,
                "rate_limited_until": wall + (b.deferred_until - now) if b.deferred_until > now else 0.0,
                "consecutive_failures": b.consecutive_failures,
                "last_error": b.last_error,
            }
        snap: dict[str, Any] = {"ts": wall, "replica": self.replica, "models": models}
        if self.ledger is not None and hasattr(self.ledger, "stats"):
            st = self.ledger.stats()
            snap["ledger"] = {"pending": st.queued, "dropped": st.dropped, "written": st.written}
        if self.shadow is not None:  # issue 16: the exporter's wilton_shadow_* metrics
            snap["shadow"] = self.shadow.stats()
        return snap

    def _publish_health(self) -> None:
        if self.store is not None:
            self.store.kv_set(f"router_health:{self.replica}", orjson.dumps(self.health_snapshot()).decode())

    # ---- decision ---------------------------------------------------------------------------

    def _latency_stats(self, now: float) -> dict[str, tuple[float | None, float | None, float | None]]:
        # percentiles sort a window: recompute twice a second, not on every request
        if now - self._lat_cache_at > 0.5:
            cache: dict[str, tuple[float | None, float | None, float | None]] = {}
            for mid, ml in self.latency.stats_by_model().items():
                cache[mid] = (ml.latency_p50_s, ml.latency_p95_s, ml.ttft_p50_s)
            self._lat_cache = cache
            self._lat_cache_at = now
        return self._lat_cache

    def _views(self, now: float) -> list[ModelView]:
        views = []
        stats = self._latency_stats(now)
        unknown = (None, None, None)
        for mid, rt in self.runtimes.items():
            m = rt.cfg
            if m.kind == "embedding":
                continue  # h6: embedding models serve /v1/embeddings only, never a chat request
            st = stats.get(mid, unknown)
            views.append(
                ModelView(
                    id=mid, tier=m.tier, is_local=m.is_local, capability=m.capability,
                    context_window=m.context_window, supports_tools=m.supports_tools,
                    supports_vision=m.supports_vision, input_cost_per_mtok=m.input_cost_per_mtok,
                    output_cost_per_mtok=m.output_cost_per_mtok,
                    # a rate-limited model is healthy: the executor waits for it or moves on
                    healthy=not rt.breaker.broken(now), configured=rt.configured,
                    available=self.model_status.get(mid) != "failed",
                    latency_p50_s=st[0], latency_p95_s=st[1], ttft_p50_s=st[2],
                )
            )
        return views

    def new_request_id(self, prefix: str = "chatcmpl-") -> str:
        # 96 random bits from a PRNG seeded by the OS: uuid4 costs a getrandom syscall per request
        return f"{prefix}{self._ids.getrandbits(96):024x}"

    def decide(self, body: dict[str, Any], started: float, caller: Caller | None = None,
               request_id: str | None = None) -> Decision:
        """The routing decision for a validated request. `caller` (from the access gate) restricts
        the choice: its allow-list, and local only. A refusal (unknown model, not allowed, nothing
        capable, nothing healthy) is recorded in the ledger before it is raised: every routed
        request is a row. `request_id`: the ledger's id for it (a validated client x-request-id),
        else a new one."""
        messages = body["messages"]
        assert self._scorer is not None, "RouterService.start() not called"
        intent, difficulty = classify_request(messages, self._scorer)
        rid = request_id or self.new_request_id()
        prompt = transcript(messages) if self.capture_prompts else None
        d = Decision(rid, [], intent.value, difficulty, started, 0.0, prompt, **_who(caller))
        if self.tracing is not None:
            self._trace_start(d, body.get("model") or "auto", bool(body.get("stream")))
        try:
            d.chain = self._chain(body, intent, difficulty, caller)
            if d.span is not None:
                d.span.span.set_attribute("wilton.chain", ",".join(d.chain))
        except RequestError as err:
            self._record_refusal(d, err.code or "bad_request", err.status, bool(body.get("stream")))
            raise
        except NoHealthyModelError as err:
            self._record_refusal(d, "no_healthy_model", err.status, bool(body.get("stream")))
            raise
        except Exception:
            self._record_crash(d, bool(body.get("stream")))
            raise
        d.decide_s = time.perf_counter() - started
        if self.shadow is not None:
            d.shadow = self.shadow.ticket(body, rid, caller, key_id=d.key_id, prompt=d.prompt)
        return d

    def _chain(self, body: dict[str, Any], intent: Intent, difficulty: float, caller: Caller | None) -> list[str]:
        messages = body["messages"]
        requested = body.get("model") or "auto"
        if requested not in AUTO_MODELS:
            if requested not in self.runtimes:
                raise UnknownModelError(requested, list(self.runtimes))
            rt = self.runtimes[requested]
            if rt.cfg.kind == "embedding":
                raise RequestError(f"The model '{requested}' is an embedding model: use POST /v1/embeddings.",
                                   param="model", code="model_not_supported", status=400)
            if not rt.configured:
                names = " or ".join(rt.cfg.key_env_names)
                raise RequestError(
                    f"The model '{requested}' is not configured: set {names} to use it.",
                    param="model", code="model_not_configured", status=400,
                )
            if caller is not None and not caller.permits(requested, rt.cfg.is_local):  # the gate said so too
                raise RequestError(f"This key may not use the model '{requested}'.", param="model",
                                   code="model_not_allowed", status=403)
            refusal = pinned_refusal(rt.cfg, body)  # what the model lacks is a 400, not a forward
            if refusal is not None:
                raise refusal
            return [requested]
        est_in = estimate_tokens(messages) + 8
        max_out = body.get("max_completion_tokens") or body.get("max_tokens") or 256
        req = RequestView(
            needs_tools=bool(body.get("tools")),
            needs_vision=intent is Intent.VISION or has_images(messages),
            est_prompt_tokens=est_in,
            est_output_tokens=int(max_out),
            capability_need=INTENT_CAPABILITY.get(intent, "basic"),
            difficulty=difficulty,
            intent=intent.value,
            stream=bool(body.get("stream")),
            pinned_model=None,
        )
        control = ControlView.from_state(self.control)
        decision = choose(self._views(time.monotonic()), req, control, self.weights, self._rng.random())
        chain = apply_preferences(decision.chain, self.preferences.get(intent.value, ()), self._is_local)
        only_local = AUTO_MODELS[requested]
        if caller is not None and caller.local_only:
            only_local = True  # a local-only request never reaches an API model, not even by fallback
        if only_local is not None:
            chain = [m for m in chain if self.runtimes[m].cfg.is_local is only_local]
        if caller is not None and caller.models:
            chain = [m for m in chain if caller.permits(m, self._is_local[m])]
        if not chain:
            capable = self._capable(req, only_local)
            message = no_model_message(req, est_in + int(max_out), only_local, capable)
            if not capable:
                # Not an outage: retrying cannot help, and a 5xx would make SDKs retry it.
                raise RequestError(message, param="messages", code="no_capable_model", status=400)
            raise NoHealthyModelError(message, [], retry_after=self._soonest_back(req, only_local))
        return chain

    def _soonest_back(self, req: RequestView, only_local: bool | None) -> float | None:
        """Seconds until the first model able to serve `req` is expected back (for Retry-After)."""
        from dataclasses import replace

        now = time.monotonic()
        waits = [self.runtimes[v.id].breaker.ready_at(now) - now for v in self._views(now)
                 if (only_local is None or v.is_local is only_local)
                 and ineligible_reason(replace(v, healthy=True, available=True), req) is None]
        return max(0.0, min(waits)) if waits else None

    def _capable(self, req: RequestView, only_local: bool | None) -> bool:
        """Could a configured model serve `req` if it were healthy? (503 when yes, 400 when no)"""
        from dataclasses import replace

        for v in self._views(time.monotonic()):
            if only_local is not None and v.is_local is not only_local:
                continue
            if ineligible_reason(replace(v, healthy=True, available=True), req) is None:
                return True
        return False

    # ---- execution --------------------------------------------------------------------------

    def _headers(self, rt: ModelRuntime, d: Decision, attempts: list[Attempt], overhead_s: float) -> list[
        tuple[bytes, bytes]
    ]:
        return [
            (b"x-wilton-model", rt.cfg.id.encode()),
            (b"x-wilton-tier", rt.cfg.tier.encode()),
            (b"x-wilton-local", b"true" if rt.cfg.is_local else b"false"),
            (b"x-wilton-fallbacks", (",".join(f"{a.model_id}:{a.kind}" for a in attempts).encode() or b"0")
             if d.admin else str(len(attempts)).encode()),
            (b"x-wilton-intent", d.intent.encode()),
            (b"x-wilton-difficulty", f"{d.difficulty:.3f}".encode()),
            (b"x-wilton-overhead-ms", f"{overhead_s * 1000:.3f}".encode()),
            (b"x-request-id", d.request_id.encode()),
            *d.extra_headers,
        ]

    def _trace_start(self, d: Decision, requested: str, stream: bool) -> None:
        assert self.tracing is not None
        d.span = self.tracing.start(d.started, {
            "wilton.request_id": d.request_id, "wilton.intent": d.intent, "wilton.difficulty": d.difficulty,
            "wilton.threshold": self.control.threshold, "wilton.phi_target": self.control.phi_target,
            "wilton.requested_model": requested, "wilton.stream": stream})

    def _record_refusal(self, d: Decision, error_class: str, http_status: int, stream: bool) -> None:
        """A request refused while routing (no model was called): a row with no model."""
        if d.span is not None:
            d.span.end({"wilton.status": "error", "wilton.error_class": error_class,
                        "http.response.status_code": http_status})
        if self.ledger is None:
            return
        self.ledger.submit(LedgerRecord(
            ts=self._clock(), request_id=d.request_id, model_id="", tier="", is_local=False, provider="",
            intent=d.intent, difficulty=d.difficulty, latency_s=time.perf_counter() - d.started,
            status="error", error_class=error_class, stream=stream, replica=self.replica,
            http_status=http_status, prompt=d.prompt, key_id=d.key_id, local_only=d.local_only,
        ))

    def _record(self, d: Decision, rt: ModelRuntime | None, attempts: list[Attempt], *, status: str,
                error_class: str | None, latency_s: float, ttft_s: float | None, usage: Usage,
                stream: bool, http_status: int = 200) -> None:
        cfg: ModelConfig | None = rt.cfg if rt else None
        if cfg is None and d.chain:
            # nothing served it: label the failure with the model that was tried last (or first
            # in line), so errors show per model; phi ignores status "error" rows
            mid = attempts[-1].model_id if attempts else d.chain[0]
            cfg = self.runtimes[mid].cfg
        if cfg is not None and status == "ok":
            self.latency.record_model(cfg.id, latency_s, ttft_s)
        if d.span is not None:
            d.span.end({"wilton.status": status, "wilton.error_class": error_class,
                        "http.response.status_code": http_status, "wilton.model": cfg.id if cfg else None,
                        "wilton.tier": cfg.tier if cfg else None, "wilton.local": bool(cfg and cfg.is_local),
                        "wilton.fallbacks": len(attempts), "wilton.tried": ",".join(a.model_id for a in attempts),
                        "wilton.tokens_in": usage.prompt_tokens, "wilton.tokens_out": usage.completion_tokens})
        if self.ledger is None:
            return
        rec = LedgerRecord(
            ts=self._clock(), request_id=d.request_id,
            model_id=cfg.id if cfg else (attempts[-1].model_id if attempts else ""),
            tier=cfg.tier if cfg else "", is_local=bool(cfg and cfg.is_local),
            provider=cfg.provider if cfg else "", intent=d.intent, difficulty=d.difficulty,
            latency_s=latency_s, ttft_s=ttft_s, tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
            cost_usd=cfg.cost_usd(usage.prompt_tokens, usage.completion_tokens) if cfg and rt else 0.0,
            status=status, error_class=error_class, fallbacks=len(attempts),
            tried=",".join(a.model_id for a in attempts), stream=stream, replica=self.replica,
            prompt=d.prompt, attempt_errors=",".join(f"{a.model_id}:{a.kind}" for a in attempts),
            http_status=http_status, key_id=d.key_id, local_only=d.local_only,
        )
        self.ledger.submit(rec)

    def record_failure(self, d: Decision, err: NoHealthyModelError, stream: bool) -> None:
        """A request no model could serve still lands in the ledger (status error)."""
        attempts = [Attempt(m, k) for m, k in err.tried if k != "cooldown"]
        self._record(d, None, attempts, status="error", error_class=err.rejected or "no_healthy_model",
                     latency_s=time.perf_counter() - d.started, ttft_s=None, usage=Usage(), stream=stream,
                     http_status=err.status)

    def _record_crash(self, d: Decision, stream: bool) -> None:
        """A bug of ours ended the request (the client gets a 500): it is still a ledger row."""
        log.exception("unhandled error routing request %s", d.request_id)
        with contextlib.suppress(Exception):
            self._record(d, None, [], status="error", error_class="internal_error",
                         latency_s=time.perf_counter() - d.started, ttft_s=None, usage=Usage(),
                         stream=stream, http_status=500)

    async def complete(self, body: dict[str, Any], d: Decision) -> Outcome:
        """`complete_result` rendered as the chat-completions body: one execute-and-record path."""
        res = await self.complete_result(body, d)
        return Outcome(orjson.dumps(res.data), res.headers)

    async def stream(self, body: dict[str, Any], d: Decision) -> StreamOutcome:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            start = await self.executor.open_stream(d.chain, body)
        except NoHealthyModelError as err:
            self.record_failure(d, err, stream=True)
            raise
        except Exception:
            self._record_crash(d, stream=True)
            raise
        rt = start.runtime
        overhead = max(0.0, (time.perf_counter() - d.started) - start.ttft_s)
        if self._observe_overhead is not None:
            self._observe_overhead(overhead)
        headers = self._headers(rt, d, start.attempts, overhead)
        return StreamOutcome(headers, self._relay(start, d, include_usage))

    async def _relay(self, start: Any, d: Decision, include_usage: bool) -> AsyncIterator[bytes]:
        from wilton_core.router.wire import sse_event

        rt: ModelRuntime = start.runtime
        usage = Usage()
        status, error_class = "ok", None
        mid = rt.cfg.id
        ttft = time.perf_counter() - d.started
        try:
            chunk = start.first
            while True:
                u = chunk.get("usage")
                if u:
                    usage = Usage.from_openai(u) or usage
                    chunk["usage"] = usage.as_openai()
                chunk["id"] = d.request_id
                if d.shadow is not None:
                    d.shadow.feed(chunk)
                if chunk.get("choices"):
                    chunk["model"] = mid
                    if u and not include_usage:
                        chunk.pop("usage", None)
                    yield _encode_chunk(chunk, rt)
                elif u and include_usage:
                    chunk["model"] = mid
                    yield _encode_chunk(chunk, rt)
                try:
                    chunk = await start.rest.__anext__()
                except StopAsyncIteration:
                    break
            yield b"data: [DONE]\n\n"
        except ProviderError as err:
            status, error_class = "stream_error", err.kind
            if err.blame == "upstream":
                rt.breaker.record_failure(time.monotonic(), err.kind)
            yield sse_event({"error": {"message": f"upstream stream from '{mid}' failed: {err.kind}",
                                       "type": "upstream_error", "param": None, "code": err.kind}})
            yield b"data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            status, error_class = "stream_error", "client_disconnected"
            raise
        except Exception:
            # a bug of ours mid-stream: the client gets an error event, the model is not blamed
            log.exception("unhandled error relaying stream %s", d.request_id)
            status, error_class = "stream_error", "internal_error"
            yield sse_event({"error": {"message": "internal error in the router while relaying the stream",
                                       "type": "server_error", "param": None, "code": "internal_error"}})
            yield b"data: [DONE]\n\n"
        finally:
            close = getattr(start.rest, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
            self._record(d, rt, start.attempts, status=status, error_class=error_class,
                         latency_s=time.perf_counter() - d.started, ttft_s=ttft, usage=usage, stream=True)
            if d.shadow is not None and status == "ok":
                d.shadow.streamed(rt.cfg, usage)

    # ---- typed results, for endpoints speaking other APIs (Anthropic Messages, Responses) ---------
    # The same executor, breakers, ledger rows and headers as complete()/stream(); only the output
    # stays data, so an endpoint translates it instead of parsing bytes another layer rendered.

    async def complete_result(self, body: dict[str, Any], d: Decision) -> ChatResult:
        try:
            return await self._complete_result(body, d)
        except NoHealthyModelError as err:
            self.record_failure(d, err, stream=False)
            raise
        except Exception:
            self._record_crash(d, stream=False)  # a bug anywhere up to the record is still a row
            raise

    async def _complete_result(self, body: dict[str, Any], d: Decision) -> ChatResult:
        res = await self.executor.complete(d.chain, body)
        data = res.completion.data
        data["model"] = res.runtime.cfg.id
        data["id"] = d.request_id  # the body's id is the ledger's: one id to trace a request by
        # what the client and the ledger see is the provider's sanitised count, never the raw field
        usage = res.completion.usage
        data["usage"] = usage.as_openai()
        total = time.perf_counter() - d.started
        overhead = max(0.0, total - res.upstream_s)
        self._record(d, res.runtime, res.attempts, status="ok", error_class=None, latency_s=total,
                     ttft_s=None, usage=usage, stream=False)
        if self._observe_overhead is not None:
            self._observe_overhead(overhead)
        if d.shadow is not None:  # a background comparison; the client's answer is not touched
            d.shadow.completed(res.runtime.cfg, data, usage)
        return ChatResult(data, usage, self._headers(res.runtime, d, res.attempts, overhead), res.runtime.cfg)

    async def stream_result(self, body: dict[str, Any], d: Decision) -> ChunkStream:
        try:
            start = await self.executor.open_stream(d.chain, body)
        except NoHealthyModelError as err:
            self.record_failure(d, err, stream=True)
            raise
        except Exception:
            self._record_crash(d, stream=True)
            raise
        overhead = max(0.0, (time.perf_counter() - d.started) - start.ttft_s)
        if self._observe_overhead is not None:
            self._observe_overhead(overhead)
        headers = self._headers(start.runtime, d, start.attempts, overhead)
        return ChunkStream(headers, start.runtime.cfg, self._relay_data(start, d))

    async def _relay_data(self, start: Any, d: Decision) -> AsyncGenerator[dict[str, Any] | StreamFailure, None]:
        rt: ModelRuntime = start.runtime
        usage = Usage()
        status, error_class = "ok", None
        mid = rt.cfg.id
        ttft = time.perf_counter() - d.started
        try:
            chunk = start.first
            while True:
                if not isinstance(chunk, dict):
                    raise UnavailableError(f"{mid}: malformed stream chunk", provider=rt.cfg.provider, model=mid)
                u = chunk.get("usage")
                if u:
                    usage = Usage.from_openai(u) or usage
                    chunk["usage"] = usage.as_openai()
                chunk["id"] = d.request_id
                chunk["model"] = mid
                if d.shadow is not None:
                    d.shadow.feed(chunk)
                if chunk.get("choices") or u:
                    yield chunk
                try:
                    chunk = await start.rest.__anext__()
                except StopAsyncIteration:
                    break
        except ProviderError as err:
            status, error_class = "stream_error", err.kind
            if err.blame == "upstream":
                rt.breaker.record_failure(time.monotonic(), err.kind)
            yield StreamFailure(err.kind, f"upstream stream from '{mid}' failed: {err.kind}", "upstream_error")
        except (asyncio.CancelledError, GeneratorExit):
            status, error_class = "stream_error", "client_disconnected"
            raise
        except Exception:
            log.exception("unhandled error relaying stream %s", d.request_id)
            status, error_class = "stream_error", "internal_error"
            yield StreamFailure("internal_error", "internal error in the router while relaying the stream",
                                "server_error")
        finally:
            close = getattr(start.rest, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
            self._record(d, rt, start.attempts, status=status, error_class=error_class,
                         latency_s=time.perf_counter() - d.started, ttft_s=ttft, usage=usage, stream=True)
            if d.shadow is not None and status == "ok":
                d.shadow.streamed(rt.cfg, usage)

    # ---- embeddings (h6): no split, a pinned or default model, fallback within its embedding_group ----

    def _embedding_chain(self, requested: str | None) -> list[str]:
        from wilton_core.providers.base import Embedder

        models = [rt.cfg for rt in self.runtimes.values() if rt.cfg.kind == "embedding"]
        if requested in (None, "", "auto"):
            default = self.routing.embedding_default
            if default is None:
                usable = [m for m in models if self.runtimes[m.id].configured]
                usable.sort(key=lambda m: not m.is_local)  # local first, config order otherwise
                if not usable:
                    raise RequestError("No embedding model is configured: add a model with kind = \"embedding\" "
                                       "(see docs/api-embeddings.md) or install the [embed] extra.",
                                       param="model", code="no_embedding_model", status=400)
                default = usable[0].id
            requested = default
        if requested not in self.runtimes:
            raise UnknownModelError(requested, [m.id for m in models])
        rt = self.runtimes[requested]
        if rt.cfg.kind != "embedding" or not isinstance(rt.provider, Embedder):
            raise RequestError(f"The model '{requested}' is not an embedding model (kind = \"embedding\").",
                               param="model", code="model_not_supported", status=400)
        if not rt.configured:
            from wilton_core.localembed import INSTALL_HINT

            how = INSTALL_HINT if rt.cfg.provider == "minilm" else f"set {' or '.join(rt.cfg.key_env_names)}"
            raise RequestError(f"The model '{requested}' is not configured: {how} to use it.", param="model",
                               code="model_not_configured", status=400)
        group = rt.cfg.embedding_group
        # vectors of different models are not comparable: fall back only to declared equivalents
        peers = [m for m in models if group is not None and m.id != requested and m.embedding_group == group
                 and self.runtimes[m.id].configured and isinstance(self.runtimes[m.id].provider, Embedder)]
        peers.sort(key=lambda m: not m.is_local)
        return [requested] + [m.id for m in peers]

    async def embed(self, model: str | None, inputs: list[str], dimensions: int | None, request_id: str,
                    started: float, caller: Caller | None = None) -> EmbedResult:
        from wilton_core.providers.base import Embedder, Embeddings

        d = Decision(request_id, [], "embedding", 0.0, started, 0.0, **_who(caller))
        if self.tracing is not None:
            self._trace_start(d, model or "auto", False)
        try:
            chain = self._embedding_chain(model)
            if caller is not None:  # the key's allow-list and local-only hold here too
                allowed = [m for m in chain if caller.permits(m, self._is_local[m])]
                if not allowed:
                    raise RequestError(f"This key may not use the embedding model '{chain[0]}'.", param="model",
                                       code="model_not_allowed", status=403)
                chain = allowed
            d.chain = chain
        except RequestError as err:
            self._record_refusal(d, err.code or "bad_request", err.status, False)
            raise

        async def call(rt: ModelRuntime) -> Embeddings:
            provider = rt.provider
            assert isinstance(provider, Embedder)
            return await provider.embed(inputs, dimensions)

        try:
            rt, res, attempts, upstream_s = await self.executor.run(d.chain, call)
        except NoHealthyModelError as err:
            self.record_failure(d, err, stream=False)
            raise
        except Exception:
            self._record_crash(d, stream=False)
            raise
        total = time.perf_counter() - d.started
        self._record(d, rt, attempts, status="ok", error_class=None, latency_s=total, ttft_s=None,
                     usage=res.usage, stream=False)
        return EmbedResult(res.vectors, res.usage, self._headers(rt, d, attempts, max(0.0, total - upstream_s)),
                           rt.cfg)

    # ---- listing ----------------------------------------------------------------------------

    def list_models(self, caller: Caller | None = None) -> dict[str, Any]:
        """Every model with its facts; a non-admin caller sees only the ids it may use, no prices."""
        if caller is not None and not caller.admin:
            created = int(self.started_at)
            return {"object": "list", "data": [
                {"id": mid, "object": "model", "created": created, "owned_by": "wilton"}
                for mid in ("auto", *self.runtimes)
                if mid == "auto" or caller.permits(mid, self._is_local[mid])]}
        now = time.monotonic()
        created = int(self.started_at)
        data = [{"id": "auto", "object": "model", "created": created, "owned_by": "wilton",
                 "wilton": {"description": "let the router choose (phi-balanced)"}}]
        for mid, rt in self.runtimes.items():
            m = rt.cfg
            status = "not_configured" if not rt.configured else (
                "cooling_down" if not rt.breaker.available(now) else self.model_status.get(mid, "untested"))
            data.append({
                "id": mid, "object": "model", "created": created, "owned_by": m.provider,
                "wilton": {
                    "provider": m.provider, "upstream_model": m.model, "tier": m.tier,
                    "is_local": m.is_local, "capability": m.capability,
                    "context_window": m.context_window, "supports_tools": m.supports_tools,
                    "supports_vision": m.supports_vision, "input_cost_per_mtok": m.input_cost_per_mtok,
                    "output_cost_per_mtok": m.output_cost_per_mtok, "configured": rt.configured,
                    "status": status, "simulated": m.simulated, "kind": m.kind,
                    **({} if rt.configured else {"reason": "set " + " or ".join(m.key_env_names)
                                                 if m.key_env_names else "not installed"}),
                },
            })
        return {"object": "list", "data": data}

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        """One entry of `list_models()` (OpenAI's model object), or None for an unknown id."""
        models: list[dict[str, Any]] = self.list_models()["data"]
        return next((m for m in models if m["id"] == model_id), None)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        usable = [mid for mid, rt in self.runtimes.items() if rt.configured and rt.breaker.available(now)]
        local = [m for m in usable if self.runtimes[m].cfg.is_local]
        api = [m for m in usable if not self.runtimes[m].cfg.is_local]
        info = {
            "ready": bool(usable),
            "usable_models": usable,
            "local_models": local,
            "api_models": api,
            "api_configured": any(not rt.cfg.is_local and rt.configured for rt in self.runtimes.values()),
            "control_state_age_s": (self._clock() - self.control_loaded_at) if self.control_loaded_at else None,
            "phi_target": self.control.phi_target,
            "threshold": self.control.threshold,
        }
        if self.ledger is not None and hasattr(self.ledger, "stats"):
            info["ledger"] = _jsonable(self.ledger.stats())
        return bool(usable), info


def _who(caller: Caller | None) -> dict[str, Any]:
    """Decision's access fields for a caller (key id, local only, admin, rate-limit headers)."""
    if caller is None:
        return {}
    return {"key_id": caller.key_id, "local_only": caller.local_only, "admin": caller.admin,
            "extra_headers": caller.headers}


def no_model_message(req: RequestView, tokens: int, only_local: bool | None, capable: bool) -> str:
    """Why no model was left for a request, in words a client can act on.

    `capable`: some configured model could serve it if it were healthy (then it is an outage).
    """
    needs = [what for what, needed in (("tool calling", req.needs_tools), ("image input (vision)", req.needs_vision))
             if needed]
    needs.append(f"a context window of at least {tokens} tokens")
    scope = {True: "local ", False: "API ", None: ""}[only_local]
    if capable:
        return (f"No {scope}model that can serve this request is healthy right now (it needs "
                f"{' and '.join(needs)}); every such model is failing or cooling down.")
    hint = (" Add a model with supports_vision = true (e.g. Ollama's minicpm-v, see docs/quickstart.md)"
            " or an API model with vision." if req.needs_vision else "")
    return f"No configured {scope}model can serve this request: it needs {' and '.join(needs)}.{hint}"


def _encode_chunk(chunk: dict[str, Any], rt: ModelRuntime) -> bytes:
    from wilton_core.router.wire import sse_event

    try:
        return sse_event(chunk)
    except orjson.JSONEncodeError:
        # nested past the encoder's limit, or a type JSON has no word for: the upstream sent garbage
        raise UnavailableError(f"{rt.cfg.id}: malformed stream chunk", provider=rt.cfg.provider,
                               model=rt.cfg.id) from None


def _intent_preferences(config: StackConfig, environ: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    env = intent_defaults_from_env(environ)
    facts = [ModelFacts(m.id, m.provider, m.model, m.base_url, m.is_local) for m in config.models]
    return preferred_ids(
        facts,
        config.routing.intent_defaults,
        {"chat": env.chat_provider, "code": env.code_provider, "vision": env.vision_provider},
        {"chat": env.chat_local_model, "code": env.code_local_model, "vision": env.vision_local_model},
    )


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return obj

