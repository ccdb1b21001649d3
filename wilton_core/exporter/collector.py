"""A prometheus_client custom Collector over the shared store.

Each scrape reads the running aggregate tables, the control state, a few kv keys and a bounded
rollup window — never the ledger — so its cost is flat in the ledger's size (bench/exporter_scrape.py
measures it). When the store cannot be read the scrape still answers: config-derived series,
`wilton_exporter_store_up 0` and an incremented error counter, so Prometheus sees the outage
instead of a scrape failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wilton_core.exporter.catalogue import spec
from wilton_core.exporter.families import ExportOptions, build_families, static_families
from wilton_core.exporter.reader import read_snapshot
from wilton_core.exporter.snapshot import Snapshot

__all__ = ["StoreCollector"]

log = logging.getLogger(__name__)

Reader = Callable[[Any, float, float], Snapshot]


class StoreCollector(Collector):
    def __init__(
        self,
        store: Any,
        options: ExportOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
        perf_counter: Callable[[], float] = time.perf_counter,
        reader: Reader = read_snapshot,
    ) -> None:
        self.store = store
        self.options = options or ExportOptions()
        self._clock = clock
        self._perf = perf_counter
        self._reader = reader
        # Scrapes may overlap (two Prometheus servers, a curl): serialise store reads so a
        # single store connection is never shared across threads mid-query.
        self._lock = threading.Lock()
        self._errors = 0

    def describe(self) -> list[Metric]:
        # Returning nothing stops register() from calling collect() (a store read) at
        # registration time; names are then not checked for clashes, which the catalogue guards.
        return []

    def collect(self) -> Iterator[Metric]:
        t0 = self._perf()
        with self._lock:
            now = self._clock()
            try:
                snap = self._reader(self.store, now, self.options.window_s)
                families = build_families(snap, self.options)
                up = 1.0
            except Exception as exc:  # any store failure must become a metric, not a 500
                self._errors += 1
                # the exception type only: messages of DB drivers can carry connection strings
                log.warning("exporter: store read failed (%s)", type(exc).__name__)
                families = static_families(self.options)
                up = 0.0
            errors = self._errors
        yield from families
        yield GaugeMetricFamily("wilton_exporter_store_up", spec("wilton_exporter_store_up").help, value=up)
        yield CounterMetricFamily(
            "wilton_exporter_scrape_errors", spec("wilton_exporter_scrape_errors").help, value=errors
        )
        yield GaugeMetricFamily(
            "wilton_exporter_scrape_duration_seconds",
            spec("wilton_exporter_scrape_duration_seconds").help,
            value=self._perf() - t0,
        )
