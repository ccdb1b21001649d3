"""hpc: batches of LLM tasks from a JSON file, persisted in the store, run through the router.

    model.py    task file schema and validation (errors name the task index and field)
    repo.py     batches and tasks in the store (migration 0030), leases for crash-safe resume
    runner.py   BatchRunner: bounded concurrency, priority order, results with model/tier/cost
    summary.py  per tier/model counts, share, latency p50/p95, tokens, cost; phi over the batch
    worker.py   the detached background runner behind `wiltonctl hpc schedule-task --no-wait`
"""

from wilton_core.hpc.model import (
    BatchSpec,
    TaskFileError,
    TaskResult,
    TaskSpec,
    load_task_file,
    parse_task_file,
)
from wilton_core.hpc.repo import BatchInfo, StoredTask, TaskRepo
from wilton_core.hpc.runner import BatchBusy, BatchRunner, RouterUnreachable, RunOutcome
from wilton_core.hpc.summary import BatchSummary, GroupSummary, percentile, summarize

__all__ = [
    "BatchBusy",
    "BatchInfo",
    "BatchRunner",
    "BatchSpec",
    "BatchSummary",
    "GroupSummary",
    "RouterUnreachable",
    "RunOutcome",
    "StoredTask",
    "TaskFileError",
    "TaskRepo",
    "TaskResult",
    "TaskSpec",
    "load_task_file",
    "parse_task_file",
    "percentile",
    "summarize",
]
