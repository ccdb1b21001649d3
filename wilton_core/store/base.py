"""The shared store interface. SQLite (WAL) and PostgreSQL implement it with one schema.

Implementations are synchronous (the callers run them off the event loop: the router's ledger
writer in a background thread, the daemons in their scheduler threads).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from wilton_core.core.control_state import ControlState, PhiWindow
from wilton_core.types import LedgerRecord

__all__ = [
    "LATENCY_BUCKETS",
    "Aggregates",
    "ControlHistoryRow",
    "ControlState",
    "FallbackAggRow",
    "HistogramRow",
    "LedgerAggRow",
    "PhiWindow",
    "Store",
]

# Upper bounds (seconds) of the latency/TTFT histogram buckets the store keeps running counts for.
# Fixed so that the exporter's Prometheus histograms never change shape between releases.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"),
)


@dataclass(slots=True, frozen=True)
class LedgerAggRow:
    """Running totals for one (tier, model_id, provider, intent, status, error_class) key.

    Counters only grow (they are Prometheus counters); missing intent/error_class are "".
    """

    tier: str
    model_id: str
    provider: str
    intent: str
    status: str
    error_class: str
    requests: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_sum_s: float
    ttft_sum_s: float
    ttft_count: int
    fallbacks: int


@dataclass(slots=True, frozen=True)
class HistogramRow:
    """A Prometheus-ready histogram: `buckets` are (le, CUMULATIVE count), ending with +Inf."""

    tier: str
    model_id: str
    kind: str                          # "latency" | "ttft"
    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


@dataclass(slots=True, frozen=True)
class FallbackAggRow:
    """Failed attempts of `model_id` for `reason` (a ProviderError.kind, or "unknown")."""

    model_id: str
    reason: str
    count: int


@dataclass(slots=True, frozen=True)
class Aggregates:
    ledger: list[LedgerAggRow]
    histograms: list[HistogramRow]
    fallbacks: list[FallbackAggRow]

    def rate_limit_hits(self) -> dict[str, int]:
        """Per model id: attempts that failed with `rate_limited`."""
        return {f.model_id: f.count for f in self.fallbacks if f.reason == "rate_limited"}


@dataclass(slots=True, frozen=True)
class ControlHistoryRow:
    """One step of the coherence daemon's control loop."""

    ts: float
    phi_target: float
    measured_phi: float | None
    threshold: float
    error: float | None


class Store(Protocol):
    """The shared store. `url` is safe to log: any password in it is replaced by "***"."""

    url: str
    dialect: str   # "sqlite" | "postgres"

    # -- thin SQL API for other areas' own tables ("?" placeholders, translated per dialect) --

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the affected row count (-1 when not applicable)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Everything this thread runs inside the block commits or rolls back together."""
        ...

    def migrate(self) -> None:
        """Create or upgrade the schema (idempotent, versioned)."""
        ...

    def ping(self) -> None:
        """Return if the store answers (one round trip), raise StoreError otherwise."""
        ...

    def insert_ledger(self, records: Sequence[LedgerRecord]) -> None:
        """Insert a batch in one transaction and update the running aggregates with it."""
        ...

    def phi_window(self, since: float, until: float) -> PhiWindow: ...

    def recent_difficulties(self, since: float, limit: int = 5000) -> list[float]: ...

    def get_control_state(self) -> ControlState | None: ...

    def put_control_state(self, state: ControlState) -> None: ...

    def append_control_history(
        self,
        ts: float,
        phi_target: float,
        measured_phi: float | None,
        threshold: float,
        error: float | None,
    ) -> None: ...

    def control_history(self, since: float, until: float | None = None) -> list[ControlHistoryRow]: ...

    def ledger_rows(
        self, since: float, until: float, columns: Sequence[str] | None = None
    ) -> dict[str, list[Any]]:
        """Ledger rows with since <= ts < until as one plain list per column, ordered by ts."""
        ...

    def aggregates(self) -> Aggregates: ...

    def count_ledger(self) -> int: ...

    def kv_get(self, key: str) -> str | None: ...

    def kv_set(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...
