"""GET /phi, PUT /phi/target, POST /rebalance: the control state and the operator's lever."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from wilton_core.coherence.api.deps import PhiReader, PhiWriter, ServiceDep, client_id
from wilton_core.core.control_state import ControlState

router = APIRouter(tags=["phi"])


class PhiStatus(BaseModel):
    phi_target: float
    measured_phi: float | None = Field(description="local share over the last control interval")
    window_phi: float | None = Field(description="local share over the display window")
    window_s: float | None
    window_requests: int | None = Field(default=None, description="requests in the display window")
    error: float | None = Field(description="phi_target - measured_phi")
    threshold: float = Field(description="difficulty above which requests go to the API class")
    tie_api_share: float
    bias: float = Field(description="feedback correction, in quantile units")
    last_step_at: float | None
    steps: int

    @classmethod
    def of(cls, s: ControlState) -> PhiStatus:
        x = s.extra or {}
        return cls(phi_target=s.phi_target, measured_phi=s.measured_phi, window_phi=x.get("window_phi"),
                   window_s=x.get("window_s"), window_requests=_count(x.get("window_requests")),
                   error=s.error, threshold=s.threshold, tie_api_share=s.tie_api_share, bias=s.bias,
                   last_step_at=s.updated_at or None, steps=s.steps)


def _count(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


class TargetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phi_target: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)


@router.get("/phi", response_model=PhiStatus)
def get_phi(service: ServiceDep, _: PhiReader) -> PhiStatus:
    return PhiStatus.of(service.state())


@router.put("/phi/target", response_model=PhiStatus)
def put_target(
    service: ServiceDep, who: PhiWriter, body: TargetRequest, client: Annotated[str, Depends(client_id)]
) -> PhiStatus:
    return PhiStatus.of(service.set_target(body.phi_target, actor=who.username, client=client))


@router.post("/rebalance", response_model=PhiStatus)
def rebalance(service: ServiceDep, _: PhiWriter) -> PhiStatus:
    return PhiStatus.of(service.step())
