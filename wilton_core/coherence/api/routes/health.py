"""GET /healthz: liveness and whether the control loop is keeping up. No auth (allow-listed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from wilton_core.coherence.api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(service: ServiceDep) -> dict[str, Any]:
    state = service.state()
    age = service.clock() - state.updated_at if state.updated_at else None
    stale = age is None or age > 3 * service.options.interval_s
    return {
        "status": "degraded" if service.last_step_error else "ok",
        "steps": state.steps,
        "last_step_age_s": age,
        "stale": stale,
        "last_step_error": service.last_step_error,
    }
