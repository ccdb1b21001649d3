"""The shared store interface. SQLite (WAL) and PostgreSQL implement it with one schema.

Implementations are synchronous (the callers run them off the event loop: the router's ledger
writer in a background thread, the daemons in their scheduler threads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from wilton_core.types import LedgerRecord

__all__ = ["ControlState", "PhiWindow", "Store"]


@dataclass(slots=True)
class PhiWindow:
    """Counts over a time window, all replicas together."""

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
    extra: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    url: str

    def migrate(self) -> None:
        """Create or upgrade the schema (idempotent, versioned)."""
        ...

    def insert_ledger(self, records: Sequence[LedgerRecord]) -> None:
        """Insert a batch in one transaction and update the running aggregates with it."""
        ...

    def phi_window(self, since: float, until: float) -> PhiWindow: ...

    def recent_difficulties(self, since: float, limit: int = 5000) -> list[float]: ...

    def get_control_state(self) -> ControlState | None: ...

    def put_control_state(self, state: ControlState) -> None: ...

    def close(self) -> None: ...
