"""The hourly job: APScheduler 3, one instance at a time, missed runs coalesced into one.

The trigger is APScheduler's pure `IntervalTrigger` (`get_next_fire_time(previous, now)`), and
the clock that anchors it is a constructor parameter. `advance_to(now)` applies the same
due-run and coalescing rule the scheduler's loop applies, at a `now` the caller chooses, so a
test walks hours of simulated time in milliseconds; `run_forever()` is the production loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

__all__ = ["JOB_ID", "InsightScheduler", "utc_now"]

JOB_ID = "wilton-insight"
log = logging.getLogger("wilton.insight")


def utc_now() -> datetime:
    return datetime.now(UTC)


class InsightScheduler:
    """`job(run_time)` is called with the scheduled time in simulated runs and None when the
    real scheduler runs it (the job then reads its own clock).

    `first_delay_s` puts the first run that long after start, and the hourly rhythm from there:
    at start the stack's only llama.cpp slot belongs to the user's first requests, not to a report.
    """

    def __init__(
        self,
        job: Callable[[datetime | None], object],
        interval_s: float,
        *,
        clock: Callable[[], datetime] = utc_now,
        scheduler: BaseScheduler | None = None,
        first_delay_s: float = 0.0,
    ) -> None:
        if not first_delay_s >= 0:
            raise ValueError(f"first_delay_s must be >= 0, got {first_delay_s!r}")
        start = clock() + timedelta(seconds=first_delay_s)
        self._job = job
        self.trigger = IntervalTrigger(seconds=interval_s, start_date=start, timezone=UTC)
        self.scheduler = scheduler or BlockingScheduler(timezone=UTC)
        self.scheduler.add_job(
            job, trigger=self.trigger, args=(None,), id=JOB_ID, name="insight report",
            max_instances=1, coalesce=True,
            # a report that is late is still wanted; coalesce=True keeps it to one
            misfire_grace_time=None,
            next_run_time=start,
        )

    @property
    def next_run_time(self) -> datetime | None:
        job = self.scheduler.get_job(JOB_ID)
        return job.next_run_time if job is not None else None

    def due_runs(self, now: datetime) -> list[datetime]:
        """Fire times in (last run, now], as the scheduler computes them (pure over the trigger)."""
        out: list[datetime] = []
        t = self.next_run_time
        while t is not None and t <= now:
            out.append(t)
            t = self.trigger.get_next_fire_time(t, now)
        return out

    def advance_to(self, now: datetime) -> datetime | None:
        """Run the job once if it is due at `now` (missed runs coalesce into the latest one);
        returns the fire time that ran, or None."""
        due = self.due_runs(now)
        if not due:
            return None
        if len(due) > 1:
            log.info("coalescing %d missed insight runs into one", len(due))
        run_time = due[-1]
        try:
            self._job(run_time)
        finally:
            self.scheduler.modify_job(JOB_ID, next_run_time=self.trigger.get_next_fire_time(run_time, now))
        return run_time

    def run_forever(self) -> None:
        """Blocks until `stop()` (call it from a signal handler) or KeyboardInterrupt."""
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
