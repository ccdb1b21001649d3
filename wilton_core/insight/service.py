"""InsightService: one run = read the window, compute the numbers, ask the model, write the report.

The service owns no clock and no network of its own: the store, the LLM backend, the redactor,
the prompt source and the clock are constructor parameters. Failure is part of the product: a
missing key, an unreachable model or a rate limit gives a statistics-only report that says why,
and every run (either way) updates kv "insight:last_run" for the exporter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from wilton_core.errors import ProviderError, StoreError
from wilton_core.insight.archive import LAST_RUN_KEY, next_last_run, save_report, unique_id
from wilton_core.insight.backends import InsightBackend
from wilton_core.insight.prompt import build_prompt
from wilton_core.insight.redact import Redactor
from wilton_core.insight.report import InsightReport, report_id, write_files
from wilton_core.insight.sql_stats import SAMPLE_CAP, scan_window
from wilton_core.insight.stats import ControlColumns, summarize

__all__ = ["InsightOptions", "InsightService", "RunResult"]

log = logging.getLogger("wilton.insight")


class InsightStore(Protocol):
    """The part of `wilton_core.store.base.Store` the insight hook uses."""

    dialect: str

    def control_history(self, since: float, until: float | None = None) -> Sequence[Any]: ...
    def get_control_state(self) -> Any: ...
    def kv_get(self, key: str) -> str | None: ...
    def kv_set(self, key: str, value: str) -> None: ...
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...


@dataclass(slots=True, frozen=True)
class InsightOptions:
    history_hours: float = 24.0
    max_tasks: int = 10
    token_budget: int = 4000
    include_prompts: bool = False
    phi_target: float = 0.75          # used when the store has no control state yet
    phi_basis: str = "requests"
    latency_target_s: float = 2.0
    control_window_s: float = 300.0   # the controller's phi window, for off-target time from the ledger
    latency_sample_cap: int = SAMPLE_CAP   # above this many successful requests, p50/p95 are sampled


@dataclass(slots=True, frozen=True)
class RunResult:
    report: InsightReport
    markdown_path: Path
    json_path: Path
    last_run: dict[str, Any]


def _control_tuple(row: Any) -> tuple[Any, ...]:
    if isinstance(row, tuple | list):
        return tuple(row)
    return (row.ts, row.phi_target, row.measured_phi, row.threshold, row.error)


class InsightService:
    def __init__(
        self,
        *,
        store: InsightStore,
        backend: InsightBackend,
        reports_dir: Path,
        options: InsightOptions = InsightOptions(),
        redactor: Redactor | None = None,
        prompt_source: Callable[[Sequence[str]], dict[str, str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.backend = backend
        self.reports_dir = reports_dir
        self.options = options
        self.redact = redactor or Redactor()
        self.prompt_source = prompt_source
        self.clock = clock

    def _phi_target(self) -> float:
        state = self.store.get_control_state()
        return float(state.phi_target) if state is not None else self.options.phi_target

    def gather(self, now: float) -> Any:
        """Aggregate the window in the store and compute the numbers (the only store reads of a run).

        Memory follows minutes x distinct keys of the window, not its number of requests; see
        `wilton_core.insight.sql_stats` for the queries.
        """
        opts = self.options
        since = now - opts.history_hours * 3600.0
        agg = scan_window(self.store, since, now, latency_target_s=opts.latency_target_s,
                          max_costly=opts.max_tasks, sample_cap=opts.latency_sample_cap)
        control = ControlColumns.from_rows([_control_tuple(r) for r in self.store.control_history(since, now)])
        stats = summarize(agg, control, phi_target=self._phi_target(), basis=opts.phi_basis,
                          control_window_s=opts.control_window_s)
        from wilton_core.access.insight import window_key_spend

        stats.keys = window_key_spend(self.store, since, now)
        return stats

    async def run_once(self, now: float | None = None) -> RunResult:
        """One report. Raises StoreError only when the store itself fails (nothing to report on)."""
        now = self.clock() if now is None else now
        try:
            stats = self.gather(now)
        except StoreError as e:
            self._record(now, ok=False, reason=f"store unavailable: {self.redact(str(e))}")
            raise
        opts = self.options
        prompts: dict[str, str] = {}
        if opts.include_prompts and self.prompt_source is not None:
            prompts = {rid: self.redact(t) for rid, t in
                       self.prompt_source([c.request_id for c in stats.costliest]).items()}
        built = build_prompt(stats, token_budget=opts.token_budget, prompts=prompts or None, redact=self.redact)

        analysis = model = reason = None
        p_tok = c_tok = 0
        if not built.fits:
            reason = (f"token budget {opts.token_budget} is too small for the statistics "
                      f"(~{built.prompt_tokens_est} prompt tokens after trimming)")
        else:
            try:
                answer = await self.backend.complete(built.system, built.user, built.max_tokens)
                analysis, model = self.redact(answer.text), self.redact(answer.model)
                p_tok, c_tok = answer.prompt_tokens, answer.completion_tokens
            except ProviderError as e:
                reason = f"{e.kind}: {self.redact(e.message)}"
                if e.retry_after is not None:
                    reason += f" (retry after {e.retry_after:g} s)"
        status = "ok" if analysis else "stats_only"

        report = InsightReport(
            id=unique_id(self.store, report_id(now)), created_at=now, since=stats.since, until=stats.until,
            status=status, reason=reason, backend=self.backend.name, model=model, stats=stats.to_dict(),
            analysis=analysis, prompt_tokens=p_tok, completion_tokens=c_tok, token_budget=opts.token_budget,
            trimmed=built.trimmed, include_prompts=opts.include_prompts, prompt_excerpts=prompts,
        )
        md, js = write_files(report, self.reports_dir)
        save_report(self.store, report)
        last = self._record(now, ok=status == "ok", reason=reason)
        log.info("insight report %s: %s%s", report.id, status, f" ({reason})" if reason else "")
        return RunResult(report, md, js, last)

    def _record(self, now: float, *, ok: bool, reason: str | None) -> dict[str, Any]:
        try:
            doc = next_last_run(self.store.kv_get(LAST_RUN_KEY), ts=now, ok=ok, reason=reason)
            self.store.kv_set(LAST_RUN_KEY, json.dumps(doc))
            return doc
        except StoreError:
            log.exception("could not record the insight run in the store")
            return next_last_run(None, ts=now, ok=ok, reason=reason)

    async def aclose(self) -> None:
        await self.backend.aclose()

    def run_blocking(self, now: float | None = None) -> RunResult:
        """One run on a fresh event loop (scheduler threads, --once). The backend's HTTP clients
        belong to that loop, so they are closed with it and re-created by the next run."""

        async def go() -> RunResult:
            try:
                return await self.run_once(now)
            finally:
                await self.aclose()

        return asyncio.run(go())
