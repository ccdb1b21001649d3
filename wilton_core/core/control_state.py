"""The phi contract: what the coherence daemon measures and publishes, and every router reads.

`PhiWindow` is the measurement (counts over a window, all replicas together); `ControlState` is
what the controller publishes through the store: the target, the difficulty threshold and the
tie share the selector applies (`core.selector.ControlView.from_state`), and the controller's own
bookkeeping in `extra`. Plain data on the core floor: the store persists it, the core computes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ControlState", "PhiWindow"]


@dataclass(slots=True)
class PhiWindow:
    """Counts over a time window, all replicas together.

    requests/tokens count what a model served (status ok or stream_error); a request no model
    could serve is counted in `errors` only, so phi is the local share of served requests.
    """

    since: float
    until: float
    requests: int = 0
    local_requests: int = 0
    tokens: int = 0
    local_tokens: int = 0
    errors: int = 0

    def phi(self, basis: str = "requests") -> float | None:
        if basis == "tokens":
            return self.local_tokens / self.tokens if self.tokens else None
        return self.local_requests / self.requests if self.requests else None


@dataclass(slots=True)
class ControlState:
    """What the coherence daemon publishes and every router reads (about once a second)."""

    phi_target: float = 0.75
    threshold: float = 0.5        # difficulty above which a request goes to the API class
    bias: float = 0.0             # feedback correction already folded into threshold (for display)
    measured_phi: float | None = None
    error: float | None = None
    integral: float = 0.0
    updated_at: float = 0.0
    steps: int = 0
    # Share of requests exactly at the threshold that go to the API class (a quantile that falls
    # inside a run of equal difficulties is met by splitting the tie). Routers read it.
    tie_api_share: float = 0.0
    # Controller internals and display figures (applied target, correction, window phi, ...):
    # nothing on the request path reads these.
    extra: dict[str, Any] = field(default_factory=dict)
