"""The model selector: hard constraints, then an ordered fallback chain. Pure, no I/O, hot path.

Class choice (local vs API) is the phi balancer's lever: a request whose difficulty is above the
control threshold goes to the API class, the rest stay local. A request exactly at the threshold
goes to the API class with probability `tie_api_share` (drawn with the caller's `u`), so that a
difficulty distribution with point masses (heuristic scorers produce many equal scores) can still
be split at any share. Within a class, candidates are ordered by a cost-like score (lower is
better, see `score` and docs/control.md); the other class is appended as fallback. When the
primary class has no eligible model at all, the other class serves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from wilton_core.core.control_state import ControlState

__all__ = [
    "CAPABILITY_RANK",
    "ControlView",
    "Decision",
    "ModelView",
    "RequestView",
    "SelectorWeights",
    "choose",
    "eligible",
    "ineligible_reason",
    "phi_term",
    "primary_class",
    "score",
]

CAPABILITY_RANK: dict[str, int] = {"basic": 0, "standard": 1, "advanced": 2}
ClassName = Literal["local", "api"]

# Normalisation scales: a term equals 0.5 when the quantity equals its scale. Latency uses the
# seed's LLM latency target (2 s); cost uses one US cent per request, about what a long
# frontier answer costs, so cheap edge models stay near 0 and frontier ones approach 1.
LATENCY_SCALE_S = 2.0
COST_SCALE_USD = 0.01
# Prior for a model whose latency we have not observed yet: optimistic enough that a new model
# gets traffic (and thereby statistics), but not preferred over a known-fast one.
UNKNOWN_LATENCY_S = 1.0
UNDER_CAPABLE_PENALTY = 1.0   # per capability rank missing
OVER_CAPABLE_PENALTY = 0.25   # per rank above need: edge before frontier when the need allows
TIE_EPS = 1e-12


@dataclass(slots=True, frozen=True)
class ModelView:
    """What the selector needs to know about one model, snapshotted by the router."""

    id: str
    tier: str
    is_local: bool
    capability: str = "standard"
    context_window: int = 8192
    supports_tools: bool = False
    supports_vision: bool = False
    input_cost_per_mtok: float = 0.0
    output_cost_per_mtok: float = 0.0
    healthy: bool = True
    configured: bool = True
    available: bool = True
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    ttft_p50_s: float | None = None

    @property
    def class_name(self) -> ClassName:
        return "local" if self.is_local else "api"


@dataclass(slots=True, frozen=True)
class RequestView:
    needs_tools: bool = False
    needs_vision: bool = False
    est_prompt_tokens: int = 0
    est_output_tokens: int = 256
    capability_need: str = "basic"
    difficulty: float = 0.0
    intent: str | None = None
    stream: bool = False
    pinned_model: str | None = None


@dataclass(slots=True, frozen=True)
class ControlView:
    """The part of the published ControlState the selector reads."""

    phi_target: float = 0.75
    threshold: float = 0.5
    measured_phi: float | None = None
    tie_api_share: float = 0.0

    @classmethod
    def from_state(cls, state: ControlState) -> ControlView:
        """The selector's view of the published control state (values out of range are clamped)."""
        return cls(
            phi_target=_unit(state.phi_target, 0.75),
            threshold=_unit(state.threshold, 0.5),
            measured_phi=_unit_or_none(state.measured_phi),
            tie_api_share=_unit(state.tie_api_share, 0.0),
        )


@dataclass(slots=True, frozen=True)
class SelectorWeights:
    latency: float = 1.0
    cost: float = 1.0
    capability: float = 1.0
    phi: float = 1.0

    @classmethod
    def from_routing(cls, routing: Any) -> SelectorWeights:
        """From a `wilton_core.config.RoutingConfig` (weight_latency/cost/capability/phi)."""
        return cls(
            latency=routing.weight_latency,
            cost=routing.weight_cost,
            capability=routing.weight_capability,
            phi=routing.weight_phi,
        )


@dataclass(slots=True)
class Decision:
    """An ordered fallback chain and why.

    chain: model ids to try in order (empty when nothing is eligible).
    primary: the class the threshold picked; served_by: the class of chain[0] (differs from
    primary when the primary class had no eligible model).
    scores: per candidate, the score used for ordering (lower is better).
    rejected: per ineligible model, the hard constraint it failed.
    """

    chain: list[str]
    primary: ClassName
    served_by: ClassName | None
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def _unit(x: Any, default: float) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(v):
        return default
    return min(1.0, max(0.0, v))


def _unit_or_none(x: Any) -> float | None:
    if x is None:
        return None
    v = _unit(x, math.nan)
    return None if math.isnan(v) else v


def ineligible_reason(m: ModelView, req: RequestView) -> str | None:
    """The first hard constraint `m` fails for `req`, or None when it may serve it."""
    if not m.configured:
        return "not_configured"
    if not m.available:
        return "unavailable"
    if not m.healthy:
        return "unhealthy"
    if req.needs_vision and not m.supports_vision:
        return "no_vision"
    if req.needs_tools and not m.supports_tools:
        return "no_tools"
    if max(0, req.est_prompt_tokens) + max(0, req.est_output_tokens) > m.context_window:
        return "context_window"
    return None


def eligible(models: Iterable[ModelView], req: RequestView) -> list[ModelView]:
    """Models passing every hard constraint, in input order."""
    return [m for m in models if ineligible_reason(m, req) is None]


def primary_class(difficulty: float, control: ControlView, u: float) -> ClassName:
    """difficulty > threshold → API; at the threshold → API with probability tie_api_share."""
    d = difficulty if math.isfinite(difficulty) else 1.0  # an unscorable request is treated as hard
    t = control.threshold
    if d > t + TIE_EPS:
        return "api"
    if d >= t - TIE_EPS and u < control.tie_api_share:
        return "api"
    return "local"


def phi_term(m: ModelView, control: ControlView) -> float:
    """How serving with `m` moves phi toward the target; negative is good (score is a cost).

    e = phi_target - measured_phi (positive: too little local traffic). A local candidate scores
    -e, an API candidate +e; 0 when phi has not been measured. Within one class the term is the
    same for every candidate, so it only ranks across classes (see docs/control.md).
    """
    if control.measured_phi is None:
        return 0.0
    e = control.phi_target - control.measured_phi
    return -e if m.is_local else e


def _expected_latency(m: ModelView, req: RequestView) -> float:
    # A streaming client feels time-to-first-token; a blocking one feels the whole answer.
    if req.stream and m.ttft_p50_s is not None:
        return m.ttft_p50_s
    if m.latency_p50_s is not None:
        return m.latency_p50_s
    return UNKNOWN_LATENCY_S


def score(m: ModelView, req: RequestView, control: ControlView, weights: SelectorWeights) -> float:
    """Cost-like score, lower is better: a weighted sum of terms each in [0, 1) or small ranks.

    latency   = L / (L + 2 s), L = ttft p50 when streaming and known, else latency p50, else 1 s
    cost      = C / (C + $0.01), C = (prompt × input price + output × output price) / 1e6
    capability = 1.0 per rank below the need + 0.25 per rank above it
    phi       = phi_term(m, control)
    """
    lat = max(0.0, _expected_latency(m, req))
    lat_term = lat / (lat + LATENCY_SCALE_S) if math.isfinite(lat) else 1.0
    cost = (
        max(0, req.est_prompt_tokens) * m.input_cost_per_mtok
        + max(0, req.est_output_tokens) * m.output_cost_per_mtok
    ) / 1e6
    cost_term = cost / (cost + COST_SCALE_USD) if cost > 0 else 0.0
    have = CAPABILITY_RANK.get(m.capability, 1)
    need = CAPABILITY_RANK.get(req.capability_need, 0)
    cap_term = UNDER_CAPABLE_PENALTY * max(0, need - have) + OVER_CAPABLE_PENALTY * max(0, have - need)
    return (
        weights.latency * lat_term
        + weights.cost * cost_term
        + weights.capability * cap_term
        + weights.phi * phi_term(m, control)
    )


def _ordered(
    models: Sequence[ModelView], req: RequestView, control: ControlView, weights: SelectorWeights,
    u: float, scores: dict[str, float],
) -> list[str]:
    if not models:
        return []
    scored = []
    for i, m in enumerate(models):
        s = score(m, req, control, weights)
        scores[m.id] = s
        scored.append((s, i, m.id))
    scored.sort()
    # Exact score ties (e.g. identical replicas of one model) are rotated by the draw so that
    # load spreads instead of always hitting the first one in config order.
    out: list[str] = []
    i = 0
    while i < len(scored):
        j = i + 1
        while j < len(scored) and scored[j][0] == scored[i][0]:
            j += 1
        group = [mid for _, _, mid in scored[i:j]]
        if len(group) > 1:
            k = min(len(group) - 1, int(_unit(u, 0.0) * len(group)))
            group = group[k:] + group[:k]
        out.extend(group)
        i = j
    return out


def choose(
    models: Sequence[ModelView],
    req: RequestView,
    control: ControlView,
    weights: SelectorWeights | None = None,
    u: float = 0.0,
) -> Decision:
    """Ordered fallback chain for `req`. `u` is a uniform draw in [0, 1) from the caller."""
    w = weights or SelectorWeights()
    rejected: dict[str, str] = {}
    local: list[ModelView] = []
    api: list[ModelView] = []
    for m in models:
        why = ineligible_reason(m, req)
        if why is not None:
            rejected[m.id] = why
        elif m.is_local:
            local.append(m)
        else:
            api.append(m)

    primary = primary_class(req.difficulty, control, u)

    if req.pinned_model is not None:
        pinned = next((m for m in models if m.id == req.pinned_model), None)
        if pinned is None:
            return Decision([], primary, None, "pinned_unknown", rejected=rejected)
        why = rejected.get(pinned.id)
        if why is not None:
            return Decision([], primary, None, f"pinned_ineligible:{why}", rejected=rejected)
        return Decision([pinned.id], primary, pinned.class_name, "pinned", rejected=rejected)

    scores: dict[str, float] = {}
    first, second = (api, local) if primary == "api" else (local, api)
    chain = _ordered(first, req, control, w, u, scores) + _ordered(second, req, control, w, u, scores)
    if not chain:
        return Decision([], primary, None, "no_eligible_model", scores, rejected)
    other: ClassName = "local" if primary == "api" else "api"
    served_by, reason = (primary, "threshold") if first else (other, "primary_class_empty")
    return Decision(chain, primary, served_by, reason, scores, rejected)
