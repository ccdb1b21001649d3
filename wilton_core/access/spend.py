"""A key's spend as the gate sees it, and the tap that feeds it from the router's ledger records."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from wilton_core.types import Ledger, LedgerRecord

__all__ = ["LedgerTap", "SpendBook"]


class SpendBook:
    """A key's spend: the store's figure at the last refresh + this process's records not yet in it.

    Records are matched to the store by the ledger writer's settled count (written + dropped +
    rejected, FIFO): a record whose sequence number is at or below it is no longer pending.
    """

    def __init__(self) -> None:
        self.stored: dict[str, float] = {}
        self.pending: dict[str, float] = {}
        self._log: deque[tuple[int, str, float]] = deque()
        self.seq = 0

    def add(self, key_id: str, cost: float) -> None:
        self.seq += 1
        if key_id and cost > 0:
            self._log.append((self.seq, key_id, cost))
            self.pending[key_id] = self.pending.get(key_id, 0.0) + cost

    def tick(self) -> None:
        self.seq += 1

    def settle(self, stored: dict[str, float], settled_seq: int) -> None:
        while self._log and self._log[0][0] <= settled_seq:
            self._log.popleft()
        pending: dict[str, float] = {}
        for _, kid, cost in self._log:
            pending[kid] = pending.get(kid, 0.0) + cost
        self.stored, self.pending = stored, pending

    def of(self, key_id: str) -> float:
        return self.stored.get(key_id, 0.0) + self.pending.get(key_id, 0.0)


class LedgerTap:
    """Every ledger record of the router passes here on its way to the writer: spend and TPM are
    charged from the same numbers the ledger keeps. A `Ledger` (submit only): the writer's life is
    its owner's (the router service gets it as `writer=`)."""

    def __init__(self, writer: Ledger, observe: Callable[[LedgerRecord], None]) -> None:
        self.writer = writer
        self.observe = observe

    def submit(self, record: LedgerRecord) -> None:
        self.observe(record)
        self.writer.submit(record)
