"""Routing preview: which model would serve each intent in each tier (the wizard's final table).

A display aid, not the router: the real choice also weighs phi, difficulty and live latency
(core/selector.py). This answers the setup question "what will my chat/code/vision/system
requests land on?" from the config and the test results alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wilton_core.config import CAPABILITY_RANK, ModelConfig
from wilton_core.registry.registry import ProbeResult

__all__ = ["INTENTS", "TIERS", "routing_preview"]

INTENTS: tuple[str, ...] = ("chat", "code", "vision", "system")
TIERS: tuple[str, ...] = ("selfhost", "edge", "frontier")
_MIN_CAPABILITY = {"chat": "basic", "code": "standard", "vision": "basic", "system": "basic"}


def _eligible(m: ModelConfig, intent: str, st: ProbeResult | None, environ: Mapping[str, str] | None,
              require_tested: bool) -> bool:
    if not m.is_configured(environ):
        return False
    if require_tested and (st is None or not st.ok):
        return False
    if intent == "vision" and not m.supports_vision:
        return False
    return CAPABILITY_RANK[m.capability] >= CAPABILITY_RANK[_MIN_CAPABILITY.get(intent, "basic")]


def routing_preview(
    models: Sequence[ModelConfig],
    statuses: Mapping[str, ProbeResult] | None = None,
    intent_defaults: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str | None]]:
    """{intent: {tier: model id or None}}. With `statuses`, only models that passed their test."""
    defaults = dict(intent_defaults or {})
    out: dict[str, dict[str, str | None]] = {}
    for intent in INTENTS:
        row: dict[str, str | None] = {}
        for tier in TIERS:
            cands = [m for m in models if m.tier == tier and _eligible(
                m, intent, (statuses or {}).get(m.id), environ, statuses is not None)]

            def key(m: ModelConfig, intent: str = intent) -> tuple[int, int, int, float, float]:
                st = (statuses or {}).get(m.id)
                return (
                    0 if defaults.get(intent) == m.id else 1,
                    # code wants the most capable model; the other intents the cheapest that fits
                    -CAPABILITY_RANK[m.capability] if intent == "code" else CAPABILITY_RANK[m.capability],
                    0 if st is None or st.status == "available" else 1,
                    st.latency_ms if st is not None and st.latency_ms is not None else float("inf"),
                    m.input_cost_per_mtok + m.output_cost_per_mtok,
                )

            row[tier] = min(cands, key=key).id if cands else None
        out[intent] = row
    return out
