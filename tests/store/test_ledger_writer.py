"""LedgerWriter against an in-memory fake store (the real-store case is in test_contract.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from wilton_core.errors import StoreError
from wilton_core.store.ledger_writer import LedgerWriter
from wilton_core.types import LedgerRecord


def rec(i: int) -> LedgerRecord:
    return LedgerRecord(ts=float(i), request_id=f"r{i}", model_id="m", tier="selfhost", is_local=True,
                        provider="ollama")


class MemoryStore:
    """Keeps what it is given; can be made to fail, block, or refuse particular records."""

    def __init__(self) -> None:
        self.rows: list[LedgerRecord] = []
        self.batches: list[int] = []
        self.down = False
        self.refuse: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def insert_ledger(self, records: Sequence[LedgerRecord]) -> None:
        self.gate.wait(10)
        if self.down:
            raise StoreError("sqlite store sqlite:///x.db: disk I/O error")
        if any(r.request_id in self.refuse for r in records):
            raise StoreError("postgres store postgresql://u:***@h/d: invalid byte sequence")
        with self.lock:
            self.rows.extend(records)
            self.batches.append(len(records))

    def ping(self) -> None:
        if self.down:
            raise StoreError("down")

    def ids(self) -> list[str]:
        return [r.request_id for r in self.rows]


def fast_writer(store: object, **kw: object) -> LedgerWriter:
    opts: dict[str, object] = dict(flush_interval_s=0.005, retry_base_s=0.002, retry_max_s=0.01)
    opts.update(kw)
    return LedgerWriter(store, **opts)  # type: ignore[arg-type]  # a MemoryStore of this file


def test_writes_everything_in_bounded_batches_and_stop_flushes() -> None:
    store = MemoryStore()
    w = fast_writer(store, batch_size=64)
    w.start()
    for i in range(1000):
        w.submit(rec(i))
    assert w.stop(timeout=10) == 0
    assert store.ids() == [f"r{i}" for i in range(1000)]  # in order, once each
    assert max(store.batches) <= 64
    s = w.stats()
    assert (s.written, s.queued, s.dropped, s.rejected) == (1000, 0, 0, 0)


def test_flush_waits_for_the_write() -> None:
    store = MemoryStore()
    ticks = iter(range(100, 10_000))
    w = fast_writer(store, flush_interval_s=30.0, clock=lambda: float(next(ticks)))
    w.start()
    try:
        w.submit(rec(1))
        assert w.flush(timeout=5) is True  # long flush interval: flush() itself triggers the write
        assert store.ids() == ["r1"]
        assert w.stats().last_flush_ts is not None and w.stats().last_flush_ts >= 100
    finally:
        w.stop()


def test_submit_never_blocks_while_the_store_is_stuck() -> None:
    store = MemoryStore()
    store.gate.clear()  # every insert hangs
    w = fast_writer(store, batch_size=10, max_queue=50_000)
    w.start()
    try:
        # every insert hangs until the gate opens: a submit that waited on the store would never
        # return, so reaching the next line at all is the proof (no timing assertion needed)
        for i in range(20_000):
            w.submit(rec(i))
        assert w.stats().queued == 20_000
    finally:
        store.gate.set()
        assert w.stop(timeout=10) == 0
    assert len(store.rows) == 20_000


def test_full_queue_drops_the_oldest_and_counts_them() -> None:
    store = MemoryStore()
    w = fast_writer(store, max_queue=10)
    for i in range(15):  # not started yet: everything stays queued
        w.submit(rec(i))
    assert (w.stats().queued, w.stats().dropped) == (10, 5)
    w.start()
    assert w.stop(timeout=5) == 0
    assert store.ids() == [f"r{i}" for i in range(5, 15)]


def test_outage_keeps_records_then_recovers() -> None:
    store = MemoryStore()
    store.down = True
    w = fast_writer(store, batch_size=20)
    w.start()
    for i in range(100):
        w.submit(rec(i))
    deadline = time.monotonic() + 5
    while w.stats().failed_flushes < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    s = w.stats()
    assert s.failed_flushes >= 5 and s.queued == 100 and s.written == 0
    assert s.last_error is not None and "disk I/O error" in s.last_error
    store.down = False
    assert w.stop(timeout=10) == 0
    assert sorted(store.ids(), key=lambda x: int(x[1:])) == [f"r{i}" for i in range(100)]
    assert w.stats().rejected == 0 and w.stats().last_error is None


def test_a_record_the_store_refuses_does_not_block_the_rest() -> None:
    store = MemoryStore()
    store.refuse = {"r7"}
    w = fast_writer(store, batch_size=10, isolate_after=2)
    w.start()
    for i in range(30):
        w.submit(rec(i))
    assert w.stop(timeout=10) == 0
    assert sorted(int(x[1:]) for x in store.ids()) == [i for i in range(30) if i != 7]
    assert w.stats().rejected == 1


def test_a_malformed_record_is_rejected_at_once() -> None:
    class Typed(MemoryStore):
        def insert_ledger(self, records: Sequence[LedgerRecord]) -> None:
            for r in records:
                if not isinstance(r.tokens_in, int):
                    raise TypeError("unsupported operand")
            super().insert_ledger(records)

    store = Typed()
    w = fast_writer(store, batch_size=10)
    w.start()
    bad = rec(3)
    bad.tokens_in = None  # type: ignore[assignment]
    for i in range(10):
        w.submit(bad if i == 3 else rec(i))
    assert w.stop(timeout=10) == 0
    assert len(store.rows) == 9 and w.stats().rejected == 1
    assert w.stats().failed_flushes == 2  # the batch once, then the bad record alone


def test_stop_gives_up_at_its_timeout_and_reports_the_loss() -> None:
    store = MemoryStore()
    store.down = True
    w = LedgerWriter(store, flush_interval_s=0.005, retry_base_s=1.0, retry_max_s=5.0)
    w.start()
    for i in range(42):
        w.submit(rec(i))
    time.sleep(0.05)
    t0 = time.monotonic()
    assert w.stop(timeout=0.3) == 42
    assert time.monotonic() - t0 < 2.0


def test_a_store_recovering_mid_isolation_rejects_nothing() -> None:
    """The insert fails while down; the store is back by the time it is pinged."""

    class RecoversOnPing(MemoryStore):
        def ping(self) -> None:
            self.down = False

    store = RecoversOnPing()
    store.down = True
    w = fast_writer(store, batch_size=10, isolate_after=1)
    w.start()
    for i in range(10):
        w.submit(rec(i))
    assert w.stop(timeout=10) == 0
    assert w.stats().rejected == 0
    assert sorted(int(x[1:]) for x in store.ids()) == list(range(10))
