"""The routing decision for one request, from memory only: intent and difficulty (the pure core),
the selector's chain over each model's health and latency, then the caller's limits.

A refusal here (unknown model, not allowed, nothing capable, nothing healthy) is recorded
before it is raised: every routed request is a ledger row.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from wilton_core.access.caller import Caller
from wilton_core.config import StackConfig
from wilton_core.core.classify import classify_request
from wilton_core.core.intent import INTENT_CAPABILITY, Intent, intent_defaults_from_env
from wilton_core.core.messages import estimate_tokens, has_images, transcript
from wilton_core.core.preferences import (
    AUTO_MODELS,
    ModelFacts,
    PinCandidate,
    apply_preferences,
    merge_chain,
    preferred_ids,
    usable_pins,
)
from wilton_core.core.selector import (
    ControlView,
    ModelView,
    RequestView,
    SelectorWeights,
    choose,
    ineligible_reason,
)
from wilton_core.errors import NoHealthyModelError, RequestError, UnknownModelError
from wilton_core.router.capabilities import pinned_refusal
from wilton_core.router.recorder import Recorder
from wilton_core.router.results import Route
from wilton_core.router.state import RouterState

__all__ = ["AUTO_MODELS", "Decider", "no_model_message"]


_LatencyStats = dict[str, tuple[float | None, float | None, float | None]]


class Decider:
    def __init__(self, state: RouterState, recorder: Recorder, *, rng: random.Random,
                 environ: Mapping[str, str], capture_prompts: bool = False) -> None:
        self._state = state
        self._recorder = recorder
        self._rng = rng
        self._ids = random.Random()  # request ids; never the decision rng, which tests may seed
        self.capture_prompts = capture_prompts
        self.weights = SelectorWeights.from_routing(state.routing)
        self.preferences = _intent_preferences(state.config, environ)
        self._lat_cache: _LatencyStats = {}
        self._lat_cache_at = -1.0

    def new_request_id(self, prefix: str = "chatcmpl-") -> str:
        # 96 random bits from a PRNG seeded by the OS: uuid4 costs a getrandom syscall per request
        return f"{prefix}{self._ids.getrandbits(96):024x}"

    def decide(self, body: dict[str, Any], started: float, caller: Caller | None = None,
               request_id: str | None = None, *, prefer: Sequence[str] = (), fallback: bool = True) -> Route:
        """The route of a validated chat request. `caller` (from the access gate) restricts the
        choice: its allow-list, and local only. `request_id`: the ledger's id (a validated client
        x-request-id), else a new one. `prefer`: configured model ids to try first when the request
        lets the router choose (those that cannot serve it are dropped), then — when `fallback` —
        the router's own chain; without `fallback` only the first usable one."""
        messages = body["messages"]
        st = self._state
        assert st.scorer is not None, "RouterService.start() not called"
        intent, difficulty = classify_request(messages, st.scorer)
        rid = request_id or self.new_request_id()
        prompt = transcript(messages) if self.capture_prompts else None
        route = Route(rid, [], intent.value, difficulty, started, 0.0, prompt)
        if caller is not None:
            route.key_id, route.local_only = caller.key_id, caller.local_only
        stream = bool(body.get("stream"))
        self._recorder.open_span(route, body.get("model") or "auto", stream)
        try:
            route.chain = self._chain(body, intent, difficulty, caller, prefer, fallback)
            if route.span is not None:
                route.span.set("wilton.chain", ",".join(route.chain))
        except RequestError as err:
            self._recorder.refusal(route, err.code or "bad_request", err.status, stream)
            raise
        except NoHealthyModelError as err:
            self._recorder.refusal(route, "no_healthy_model", err.status, stream)
            raise
        except Exception:
            self._recorder.crash(route, stream)
            raise
        route.decide_s = time.perf_counter() - started
        if st.shadow is not None:  # a draw only: the comparison runs after the client's answer
            route.shadow = st.shadow.ticket(body, rid, caller, key_id=route.key_id, prompt=route.prompt)
        return route

    def _chain(self, body: dict[str, Any], intent: Intent, difficulty: float, caller: Caller | None,
               prefer: Sequence[str], fallback: bool) -> list[str]:
        requested = body.get("model") or "auto"
        if requested not in AUTO_MODELS:
            return self._pinned(requested, body, caller)
        pins = self._usable_pins(body, prefer, AUTO_MODELS[requested]) if prefer else []
        if not pins:
            return self._auto(body, intent, difficulty, caller, requested)
        if not fallback:
            return self._pinned(pins[0], body, caller)
        try:
            chain = self._auto(body, intent, difficulty, caller, requested)
        except NoHealthyModelError:
            # nothing the router would choose by itself; the preferred model may still serve
            chain = self._pinned(pins[0], body, caller)
        return merge_chain(pins, chain)

    def _usable_pins(self, body: dict[str, Any], prefer: Sequence[str], only_local: bool | None) -> list[str]:
        candidates = {mid: PinCandidate(mid, rt.configured, rt.cfg.is_local, rt.cfg.supports_vision,
                                        rt.cfg.supports_tools)
                      for mid, rt in self._state.runtimes.items()}
        return usable_pins(prefer, candidates, needs_vision=has_images(body["messages"]),
                           needs_tools=bool(body.get("tools")), only_local=only_local)

    def _pinned(self, requested: str, body: dict[str, Any], caller: Caller | None) -> list[str]:
        runtimes = self._state.runtimes
        if requested not in runtimes:
            raise UnknownModelError(requested, list(runtimes))
        rt = runtimes[requested]
        if rt.cfg.kind == "embedding":
            raise RequestError(f"The model '{requested}' is an embedding model: use POST /v1/embeddings.",
                               param="model", code="model_not_supported", status=400)
        if not rt.configured:
            names = " or ".join(rt.cfg.key_env_names)
            raise RequestError(f"The model '{requested}' is not configured: set {names} to use it.",
                               param="model", code="model_not_configured", status=400)
        if caller is not None and not caller.permits(requested, rt.cfg.is_local):  # the gate said so too
            raise RequestError(f"This key may not use the model '{requested}'.", param="model",
                               code="model_not_allowed", status=403)
        refusal = pinned_refusal(rt.cfg, body)  # what the model lacks is a 400, not a forward
        if refusal is not None:
            raise refusal
        return [requested]

    def _auto(self, body: dict[str, Any], intent: Intent, difficulty: float, caller: Caller | None,
              requested: str) -> list[str]:
        st = self._state
        messages = body["messages"]
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
        control = ControlView.from_state(st.control)
        decision = choose(self._views(time.monotonic()), req, control, self.weights, self._rng.random())
        chain = apply_preferences(decision.chain, self.preferences.get(intent.value, ()), st.is_local)
        only_local = AUTO_MODELS[requested]
        if caller is not None and caller.local_only:
            only_local = True  # a local-only request never reaches an API model, not even by fallback
        if only_local is not None:
            chain = [m for m in chain if st.is_local[m] is only_local]
        if caller is not None and caller.models:
            chain = [m for m in chain if caller.permits(m, st.is_local[m])]
        if not chain:
            capable = self._capable(req, only_local)
            message = no_model_message(req, est_in + int(max_out), only_local, capable)
            if not capable:
                # Not an outage: retrying cannot help, and a 5xx would make SDKs retry it.
                raise RequestError(message, param="messages", code="no_capable_model", status=400)
            raise NoHealthyModelError(message, [], retry_after=self._soonest_back(req, only_local))
        return chain

    def _latency_stats(self, now: float) -> _LatencyStats:
        # percentiles sort a window: recompute twice a second, not on every request
        if now - self._lat_cache_at > 0.5:
            self._lat_cache = {mid: (ml.latency_p50_s, ml.latency_p95_s, ml.ttft_p50_s)
                               for mid, ml in self._state.latency.stats_by_model().items()}
            self._lat_cache_at = now
        return self._lat_cache

    def _views(self, now: float) -> list[ModelView]:
        st = self._state
        views = []
        stats = self._latency_stats(now)
        unknown = (None, None, None)
        for mid, rt in st.runtimes.items():
            m = rt.cfg
            if m.kind == "embedding":
                continue  # h6: embedding models serve /v1/embeddings only, never a chat request
            p50, p95, ttft = stats.get(mid, unknown)
            views.append(ModelView(
                id=mid, tier=m.tier, is_local=m.is_local, capability=m.capability,
                context_window=m.context_window, supports_tools=m.supports_tools,
                supports_vision=m.supports_vision, input_cost_per_mtok=m.input_cost_per_mtok,
                output_cost_per_mtok=m.output_cost_per_mtok,
                # a rate-limited model is healthy: the executor waits for it or moves on
                healthy=not rt.breaker.broken(now), configured=rt.configured,
                available=st.model_status.get(mid) != "failed",
                latency_p50_s=p50, latency_p95_s=p95, ttft_p50_s=ttft,
            ))
        return views

    def _could_serve(self, req: RequestView, only_local: bool | None, now: float) -> list[ModelView]:
        """Models that could serve `req` if they were healthy and available."""
        return [v for v in self._views(now) if (only_local is None or v.is_local is only_local)
                and ineligible_reason(replace(v, healthy=True, available=True), req) is None]

    def _soonest_back(self, req: RequestView, only_local: bool | None) -> float | None:
        """Seconds until the first model able to serve `req` is expected back (for Retry-After)."""
        now = time.monotonic()
        waits = [self._state.runtimes[v.id].breaker.ready_at(now) - now for v in self._could_serve(req, only_local, now)]
        return max(0.0, min(waits)) if waits else None

    def _capable(self, req: RequestView, only_local: bool | None) -> bool:
        """Could a configured model serve `req` if it were healthy? (503 when yes, 400 when no)"""
        return bool(self._could_serve(req, only_local, time.monotonic()))


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


def _intent_preferences(config: StackConfig, environ: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    env = intent_defaults_from_env(environ)
    facts = [ModelFacts(m.id, m.provider, m.model, m.base_url, m.is_local) for m in config.models]
    return preferred_ids(
        facts,
        config.routing.intent_defaults,
        {"chat": env.chat_provider, "code": env.code_provider, "vision": env.vision_provider},
        {"chat": env.chat_local_model, "code": env.code_local_model, "vision": env.vision_local_model},
    )
