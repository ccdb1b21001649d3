"""Batched, off-the-request-path ledger writes.

The router calls `submit(record)` for every request: an O(1) append to an in-memory queue
under a lock held for a few instructions; it never waits on the store and never raises. A
background thread writes batches (`batch_size` records, or whatever arrived within
`flush_interval_s`) with `store.insert_ledger`, one transaction per batch.

When the store fails, the batch is kept and retried with exponential backoff while new records
keep queuing. The queue is bounded (`max_queue`): when it is full the OLDEST record is dropped
and counted in `stats().dropped`, so a long outage costs old records, never the router's memory
or latency. A batch that keeps failing while the store itself answers (`store.ping()`) is
written record by record, and a record the store refuses on its own is rejected (counted in
`stats().rejected`) instead of blocking every later one.

Loss bounds:
- graceful stop (`stop()`, e.g. on SIGTERM): nothing is lost while the store is reachable
  within `stop`'s timeout; `stop` returns how many records it could not write.
- hard kill (SIGKILL, OOM, power): at most the records submitted since the last successful
  flush — about `flush_interval_s` of traffic plus the batch being written — or, during a
  store outage, at most `max_queue` records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from wilton_core.core.health import exponential_delay
from wilton_core.errors import StoreError
from wilton_core.types import LedgerRecord

__all__ = ["LedgerSink", "LedgerWriter", "WriterStats"]


class LedgerSink(Protocol):
    """What the writer needs of a store (SqlStore, or a test's fake): write a batch, say if it answers."""

    def insert_ledger(self, records: Sequence[LedgerRecord]) -> None:
        """Write the batch in one transaction; raise StoreError (outage) or anything else (a bad record)."""
        ...

    def ping(self) -> None:
        """Return if the store answers, raise otherwise."""
        ...

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class WriterStats:
    queued: int                 # waiting in memory, including a batch being written
    written: int                # committed to the store
    dropped: int                # oldest records discarded because the queue was full
    rejected: int               # records the store refused on their own (never retried)
    failed_flushes: int         # write attempts that raised
    last_error: str | None      # the last failure, or None once a later write succeeded
    last_flush_ts: float | None  # clock() of the last successful write


class LedgerWriter:
    def __init__(
        self,
        store: LedgerSink,
        *,
        flush_interval_s: float = 0.2,
        batch_size: int = 500,
        max_queue: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        retry_base_s: float = 0.1,
        retry_max_s: float = 5.0,
        isolate_after: int = 3,
    ) -> None:
        if flush_interval_s <= 0 or batch_size <= 0 or max_queue <= 0:
            raise ValueError("flush_interval_s, batch_size and max_queue must be positive")
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.max_queue = max_queue
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.isolate_after = isolate_after
        self._clock = clock
        self._queue: deque[LedgerRecord] = deque(maxlen=max_queue)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()         # a batch is full, or flush()/stop() asked
        self._interrupt = threading.Event()    # cuts a retry backoff short when stop() begins
        self._inflight: list[LedgerRecord] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._deadline = float("inf")
        self._written = 0
        self._dropped = 0
        self._rejected = 0
        self._failed = 0
        self._last_error: str | None = None
        self._last_flush: float | None = None
        self._last_exc: BaseException | None = None

    # ------------------------------------------------------------------ request path

    def submit(self, record: LedgerRecord) -> None:
        """Queue one record. O(1); never blocks on the store, never raises."""
        with self._lock:
            if len(self._queue) >= self.max_queue:
                self._dropped += 1  # the deque's maxlen discards the oldest on append
            self._queue.append(record)
            full = len(self._queue) >= self.batch_size
        if full:
            self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="wilton-ledger-writer", daemon=True)
        self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued now; True once the queue is empty, False on timeout."""
        if self._thread is None:
            with self._lock:
                return not self._queue and not self._inflight
        self._wake.set()
        with self._idle:
            return self._idle.wait_for(lambda: not self._queue and not self._inflight, timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """Flush everything and stop the thread; returns how many records could not be written."""
        with self._lock:
            self._stopping = True
            self._deadline = self._clock() + timeout
        self._interrupt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
            self._thread = None
        with self._lock:
            return len(self._queue) + len(self._inflight)

    def __enter__(self) -> LedgerWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                queued=len(self._queue) + len(self._inflight),
                written=self._written,
                dropped=self._dropped,
                rejected=self._rejected,
                failed_flushes=self._failed,
                last_error=self._last_error,
                last_flush_ts=self._last_flush,
            )

    # ------------------------------------------------------------------ background thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            while self._take_batch():
                if not self._write_inflight():
                    break  # gave up: stopping and past the deadline
            with self._lock:
                if self._stopping and (not self._queue or self._clock() >= self._deadline):
                    return

    def _take_batch(self) -> bool:
        with self._lock:
            n = min(self.batch_size, len(self._queue))
            self._inflight = [self._queue.popleft() for _ in range(n)]
            if not n:
                self._idle.notify_all()
            return bool(n)

    def _write_inflight(self) -> bool:
        """Write the in-flight batch, retrying with backoff; False if stop's deadline passed."""
        failures = 0
        while self._inflight:
            try:
                self._insert(self._inflight)
                self._done(len(self._inflight), rejected=0)
                return True
            except Exception as err:  # any failure is retried: a record must not vanish silently
                failures += 1
                self._note_failure(err)
            if failures >= self.isolate_after or not isinstance(self._last_exc, StoreError):
                self._write_one_by_one()
                if not self._inflight:
                    return True
            if not self._backoff(failures):
                return False
        return True

    def _insert(self, records: list[LedgerRecord]) -> None:
        self.store.insert_ledger(records)

    def _write_one_by_one(self) -> None:
        """Find records the store refuses on their own; keep the rest if the store is down."""
        kept: list[LedgerRecord] = []
        written = rejected = 0
        for i, record in enumerate(self._inflight):
            verdict = self._try_alone(record)
            if verdict == "written":
                written += 1
            elif verdict == "outage":
                kept.extend(self._inflight[i:])  # not a bad record: retry them all later
                break
            else:
                rejected += 1
                log.error("ledger record rejected by the store; dropping it")
        with self._lock:
            self._inflight = kept
        self._done(written, rejected=rejected, clear=not kept)

    def _try_alone(self, record: LedgerRecord) -> str:
        """"written", "outage", or "refused" (only if it fails twice while the store answers).

        Asking twice matters: a store coming back between the failed insert and the ping
        would otherwise make a good record look refused.
        """
        for _ in range(2):
            try:
                self._insert([record])
                return "written"
            except Exception as err:
                self._note_failure(err)
                if not isinstance(err, StoreError):
                    return "refused"  # a malformed record: deterministic, no point asking twice
                if not self._store_answers():
                    return "outage"
        return "refused"

    def _store_answers(self) -> bool:
        try:
            self.store.ping()
            return True
        except Exception:
            return False

    def _done(self, written: int, *, rejected: int, clear: bool = True) -> None:
        with self._lock:
            self._written += written
            self._rejected += rejected
            if clear:
                self._inflight = []
                self._last_error = None
            if written:
                self._last_flush = self._clock()
            self._idle.notify_all()

    def _note_failure(self, err: BaseException) -> None:
        # StoreError messages carry the redacted URL only; anything else is named by type so a
        # record's content (prompts are not in it, but still) never reaches the logs.
        text = str(err) if isinstance(err, StoreError) else f"{type(err).__name__} while writing the ledger"
        with self._lock:
            self._failed += 1
            self._last_error = text
        self._last_exc = err
        log.warning("ledger write failed (%d queued): %s", len(self._queue) + len(self._inflight), text)

    def _backoff(self, failures: int) -> bool:
        delay = exponential_delay(failures - 1, self.retry_base_s, self.retry_max_s)
        with self._lock:
            stopping, deadline = self._stopping, self._deadline
        if stopping:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            delay = min(delay, remaining)
            self._interrupt.clear()
        self._interrupt.wait(delay)
        return True
