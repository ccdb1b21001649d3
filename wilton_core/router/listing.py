"""What the router says about itself: the model listing (/v1/models) and readiness (/readyz)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from wilton_core.access.caller import Caller
from wilton_core.router.state import LedgerWorker, RouterState

__all__ = ["get_model", "list_models", "readiness"]


def list_models(state: RouterState, caller: Caller | None = None) -> dict[str, Any]:
    """Every model with its facts; a non-admin caller sees only the ids it may use, no prices."""
    created = int(state.started_at)
    if caller is not None and not caller.admin:
        return {"object": "list", "data": [
            {"id": mid, "object": "model", "created": created, "owned_by": "wilton"}
            for mid in ("auto", *state.runtimes)
            if mid == "auto" or caller.permits(mid, state.is_local[mid])]}
    now = time.monotonic()
    data: list[dict[str, Any]] = [{"id": "auto", "object": "model", "created": created, "owned_by": "wilton",
                                   "wilton": {"description": "let the router choose (phi-balanced)"}}]
    for mid, rt in state.runtimes.items():
        m = rt.cfg
        status = "not_configured" if not rt.configured else (
            "cooling_down" if not rt.breaker.available(now) else state.model_status.get(mid, "untested"))
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


def get_model(state: RouterState, model_id: str) -> dict[str, Any] | None:
    """One entry of `list_models()` (OpenAI's model object), or None for an unknown id."""
    models: list[dict[str, Any]] = list_models(state)["data"]
    return next((m for m in models if m["id"] == model_id), None)


def readiness(state: RouterState, writer: LedgerWorker | None) -> tuple[bool, dict[str, Any]]:
    now = time.monotonic()
    usable = [mid for mid, rt in state.runtimes.items() if rt.configured and rt.breaker.available(now)]
    info: dict[str, Any] = {
        "ready": bool(usable),
        "usable_models": usable,
        "local_models": [m for m in usable if state.is_local[m]],
        "api_models": [m for m in usable if not state.is_local[m]],
        "api_configured": any(not rt.cfg.is_local and rt.configured for rt in state.runtimes.values()),
        "control_state_age_s": (state.clock() - state.control_loaded_at) if state.control_loaded_at else None,
        "phi_target": state.control.phi_target,
        "threshold": state.control.threshold,
    }
    if writer is not None:
        info["ledger"] = asdict(writer.stats())
    return bool(usable), info
