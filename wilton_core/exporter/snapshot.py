"""What one scrape reads from the store, as plain data.

The collector turns a `Snapshot` into metric families with a pure function (families.py), so
the mapping is tested without a store and the store read is tested without Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wilton_core.core.control_state import ControlState
from wilton_core.store.base import Aggregates

__all__ = ["KeyRow", "ModelStatusRow", "Snapshot", "WindowTotals"]


@dataclass(frozen=True, slots=True)
class ModelStatusRow:
    model_id: str
    status: str
    latency_ms: float | None
    tested_at: float | None


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One client key's totals (all replicas, all time) from api_key_usage; name '' = no key
    (local-only requests by header). Budget figures are None when the key has no budget."""

    name: str
    requests: int
    refused: int
    tokens: int
    local_only: int
    cost_usd: float
    budget_usd: float | None = None
    budget_period: str = "total"
    period_cost_usd: float | None = None


@dataclass(slots=True)
class WindowTotals:
    """Rollup sums over [since, until): the bounded window behind the measured phi."""

    since: float
    until: float
    local_requests: int = 0
    api_requests: int = 0
    local_tokens: int = 0
    api_tokens: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    last_bucket_ts: float | None = None

    def phi(self, basis: str) -> float | None:
        if basis == "tokens":
            total = self.local_tokens + self.api_tokens
            return self.local_tokens / total if total else None
        total = self.local_requests + self.api_requests
        return self.local_requests / total if total else None


@dataclass(slots=True)
class Snapshot:
    now: float
    aggregates: Aggregates = field(default_factory=lambda: Aggregates([], [], []))
    window: WindowTotals | None = None
    control: ControlState | None = None
    router_health: dict[str, dict[str, Any]] = field(default_factory=dict)  # replica -> decoded JSON
    model_status: list[ModelStatusRow] = field(default_factory=list)
    insight: dict[str, Any] | None = None
    keys: list[KeyRow] = field(default_factory=list)
