"""Where would the router send this prompt, and why: the router's own decision functions
(`classify_request`, `choose`, `apply_preferences`) over the config and the published control
state, as one typed value that `wiltonctl route explain` renders.

The models come from the running router when it answers `GET /v1/models` (what it really
serves, with keys, test results and cooldowns as it sees them), else from the config, where every
configured model is assumed healthy; what is not configured (no key) is never eligible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from wilton_core.config import StackConfig
from wilton_core.core.classify import classify_request
from wilton_core.core.intent import INTENT_CAPABILITY, Intent, intent_defaults_from_env
from wilton_core.core.preferences import ModelFacts, apply_preferences, preferred_ids
from wilton_core.core.selector import ControlView, ModelView, RequestView, SelectorWeights, choose

__all__ = ["RouteExplanation", "explain_route", "models_from_config", "models_from_router"]

# the selector's reasons for a model being ineligible, in words
_WHY = {"not_configured": "not configured (no key)", "unavailable": "failed its last test",
        "unhealthy": "cooling down", "no_vision": "cannot read images", "no_tools": "no tool calls",
        "context_window": "prompt + answer exceed its context window"}


@dataclass(frozen=True, slots=True)
class RouteExplanation:
    intent: str
    difficulty: float
    threshold: float
    threshold_source: str              # where the threshold came from (the store, or the default)
    phi_target: float
    capability_need: str
    needs_vision: bool
    primary: str                       # "local" | "api": the class the threshold picks
    served_by: str | None              # the class of the first model tried (None: nothing eligible)
    chain: tuple[str, ...]             # the models the router would try, in order
    eligible: dict[str, tuple[str, ...]]
    models_source: str                 # whose model list: the running router's, or the config's
    rejected: dict[str, str] = field(default_factory=dict)  # model id -> why not, in words
    scorer: dict[str, Any] = field(default_factory=dict)    # the scorer's own explanation

    def as_json(self) -> dict[str, Any]:
        return {
            "destination": self.served_by, "primary_class": self.primary, "chain": list(self.chain),
            "intent": self.intent, "difficulty": self.difficulty, "threshold": self.threshold,
            "threshold_source": self.threshold_source, "phi_target": self.phi_target,
            "capability_need": self.capability_need, "needs_vision": self.needs_vision,
            "eligible": {k: list(v) for k, v in self.eligible.items()}, "rejected": self.rejected,
            "models_source": self.models_source,
            "scorer": self.scorer,
        }


class _Served(BaseModel):
    """The `wilton` extension of one entry of the router's `GET /v1/models` (what we read of it)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    provider: str
    upstream_model: str
    tier: str
    is_local: bool
    capability: str
    context_window: int
    supports_tools: bool
    supports_vision: bool
    input_cost_per_mtok: float
    output_cost_per_mtok: float
    configured: bool
    status: str


Models = tuple[list[ModelView], list[ModelFacts]]


def models_from_config(cfg: StackConfig, environ: Mapping[str, str]) -> Models:
    chat = [m for m in cfg.models if m.kind == "chat"]  # embedding models are never routed chat
    views = [ModelView(id=m.id, tier=m.tier, is_local=m.is_local, capability=m.capability,
                       context_window=m.context_window, supports_tools=m.supports_tools,
                       supports_vision=m.supports_vision, input_cost_per_mtok=m.input_cost_per_mtok,
                       output_cost_per_mtok=m.output_cost_per_mtok, configured=m.is_configured(environ))
             for m in chat]
    return views, [ModelFacts(m.id, m.provider, m.model, m.base_url, m.is_local) for m in chat]


def models_from_router(body: Any) -> Models | None:
    """From the router's `GET /v1/models`; None when the body is not the list it serves."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    views: list[ModelView] = []
    facts: list[ModelFacts] = []
    for item in data:
        if not isinstance(item, dict) or item.get("id") == "auto" or not isinstance(item.get("id"), str):
            continue
        wilton = item.get("wilton")
        if isinstance(wilton, dict) and wilton.get("kind", "chat") != "chat":
            continue  # embedding and audio models are never routed chat
        try:
            w = _Served.model_validate(item.get("wilton"))
        except ValidationError:
            return None
        views.append(ModelView(
            id=item["id"], tier=w.tier, is_local=w.is_local, capability=w.capability,
            context_window=w.context_window, supports_tools=w.supports_tools, supports_vision=w.supports_vision,
            input_cost_per_mtok=w.input_cost_per_mtok, output_cost_per_mtok=w.output_cost_per_mtok,
            healthy=w.status != "cooling_down", configured=w.configured, available=w.status != "failed"))
        facts.append(ModelFacts(item["id"], w.provider, w.upstream_model, None, w.is_local))
    return (views, facts) if views else None


def explain_route(prompt: str, cfg: StackConfig, control: Any, *, threshold_source: str,
                  environ: Mapping[str, str], scorer: Any, models: Models | None = None,
                  models_source: str = "from the config") -> RouteExplanation:
    """`control`: a ControlState (published by the coherence daemon, or the router's default);
    `models`: what the running router serves (`models_from_router`), else the config's."""
    intent, difficulty = classify_request(prompt, scorer)
    need = INTENT_CAPABILITY.get(intent, "basic")
    req = RequestView(needs_vision=intent is Intent.VISION, est_prompt_tokens=len(prompt) // 4 + 8,
                      est_output_tokens=256, capability_need=need, difficulty=difficulty, intent=intent.value)
    views, facts = models or models_from_config(cfg, environ)
    cv = ControlView.from_state(control)
    # u = 0: equal scores keep config order (the router rotates them with a random draw)
    decision = choose(views, req, cv, SelectorWeights.from_routing(cfg.routing), 0.0)
    chain = apply_preferences(decision.chain, _preferences(cfg, facts, environ).get(intent.value, ()),
                              {v.id: v.is_local for v in views})
    ok = [v for v in views if v.id not in decision.rejected]
    return RouteExplanation(
        intent=intent.value, difficulty=difficulty, threshold=cv.threshold, threshold_source=threshold_source,
        phi_target=cv.phi_target, capability_need=need, needs_vision=req.needs_vision, primary=decision.primary,
        served_by=decision.served_by, chain=tuple(chain),
        eligible={"local": _ids(ok, True), "api": _ids(ok, False)}, models_source=models_source,
        rejected={mid: _WHY.get(why, why) for mid, why in decision.rejected.items()},
        scorer=dict(scorer.explain(prompt)),
    )


def _ids(views: Sequence[ModelView], local: bool) -> tuple[str, ...]:
    return tuple(v.id for v in views if v.is_local is local)


def _preferences(cfg: StackConfig, facts: Sequence[ModelFacts],
                 environ: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    # the same per-intent preferences the router builds (router/service.py `_intent_preferences`)
    env = intent_defaults_from_env(environ)
    return preferred_ids(facts, cfg.routing.intent_defaults,
                         {"chat": env.chat_provider, "code": env.code_provider, "vision": env.vision_provider},
                         {"chat": env.chat_local_model, "code": env.code_local_model,
                          "vision": env.vision_local_model})
