"""Task batches in the shared store (migration 0030): persisted before they run, resumable after.

A runner takes a batch by acquiring its lease and renews it while it works. A lease that
expired means its runner died: the next runner takes the batch over and puts the tasks the
dead one left "running" back to "pending". Every method takes `now` so the lease logic is
tested without waiting.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wilton_core.hpc.model import BatchSpec, TaskResult
from wilton_core.store.base import Store

__all__ = ["BatchInfo", "PendingTask", "StoredTask", "TaskRepo", "new_batch_id"]

_RESULT_COLS = ("status", "response_text", "model_id", "tier", "is_local", "routed_intent", "difficulty",
                "fallbacks", "latency_s", "tokens_in", "tokens_out", "cost_usd", "http_status", "error")


def new_batch_id() -> str:
    return "b-" + uuid.uuid4().hex[:12]


@dataclass(slots=True, frozen=True)
class BatchInfo:
    id: str
    name: str
    source: str
    created_at: float
    concurrency: int
    status: str
    lease_owner: str | None
    lease_until: float
    finished_at: float | None
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unfinished(self) -> int:
        return self.counts.get("pending", 0) + self.counts.get("running", 0)


@dataclass(slots=True, frozen=True)
class PendingTask:
    batch_id: str
    idx: int
    priority: int
    request: dict[str, Any]


@dataclass(slots=True, frozen=True)
class StoredTask:
    idx: int
    priority: int
    intent: str | None
    request: dict[str, Any]
    attempts: int
    started_at: float | None
    finished_at: float | None
    result: TaskResult

    def as_json(self) -> dict[str, Any]:
        r = self.result
        return {"idx": self.idx, "priority": self.priority, "intent": self.intent, "status": r.status,
                "attempts": self.attempts, "started_at": self.started_at, "finished_at": self.finished_at,
                "model": r.model_id, "tier": r.tier, "is_local": r.is_local, "routed_intent": r.routed_intent,
                "difficulty": r.difficulty, "fallbacks": r.fallbacks, "latency_s": r.latency_s,
                "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "cost_usd": r.cost_usd,
                "http_status": r.http_status, "error": r.error, "text": r.text}


class TaskRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- writing ----------------------------------------------------------------------------

    def create_batch(self, spec: BatchSpec, *, now: float, concurrency: int, source: str = "",
                     batch_id: str | None = None) -> str:
        """Persist the batch and every task (all pending) in one transaction; returns the batch id."""
        bid = batch_id or new_batch_id()
        rows = [(bid, i, t.priority, t.intent, json.dumps(t.request_body(), ensure_ascii=False))
                for i, t in enumerate(spec.tasks)]
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO task_batches (id, name, source, created_at, concurrency, status) "
                "VALUES (?, ?, ?, ?, ?, 'pending')",
                (bid, spec.name, source, now, concurrency),
            )
            self.store.executemany(
                "INSERT INTO tasks (batch_id, idx, priority, intent, request) VALUES (?, ?, ?, ?, ?)", rows)
        return bid

    def acquire(self, batch_id: str, owner: str, *, now: float, ttl_s: float) -> bool:
        """Take (or renew) the batch's lease. On a takeover, orphaned running tasks become pending."""
        with self.store.transaction():
            n = self.store.execute(
                "UPDATE task_batches SET lease_owner = ?, lease_until = ?, status = 'running' "
                "WHERE id = ? AND status <> 'done' AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
                (owner, now + ttl_s, batch_id, owner, now),
            )
            if n != 1:
                return False
            # any task still "running" now belonged to a runner whose lease is gone
            self.store.execute(
                "UPDATE tasks SET status = 'pending' WHERE batch_id = ? AND status = 'running'", (batch_id,))
        return True

    def renew(self, batch_id: str, owner: str, *, now: float, ttl_s: float) -> bool:
        n = self.store.execute(
            "UPDATE task_batches SET lease_until = ? WHERE id = ? AND lease_owner = ?",
            (now + ttl_s, batch_id, owner),
        )
        return n == 1

    def release(self, batch_id: str, owner: str, *, now: float) -> str:
        """Give the lease back; the batch becomes "done" when no task is left unfinished."""
        left = self.store.query_one(
            "SELECT COUNT(*) FROM tasks WHERE batch_id = ? AND status IN ('pending', 'running')", (batch_id,))
        status = "pending" if left and int(left[0]) else "done"
        self.store.execute(
            "UPDATE task_batches SET lease_owner = NULL, lease_until = 0, status = ?, finished_at = ? "
            "WHERE id = ? AND lease_owner = ?",
            (status, now if status == "done" else None, batch_id, owner),
        )
        return status

    def pending(self, batch_id: str) -> list[PendingTask]:
        """Pending tasks, highest priority first, then file order."""
        rows = self.store.query(
            "SELECT idx, priority, request FROM tasks WHERE batch_id = ? AND status = 'pending' "
            "ORDER BY priority DESC, idx ASC", (batch_id,))
        return [PendingTask(batch_id, int(i), int(p), json.loads(r)) for i, p, r in rows]

    def start_task(self, batch_id: str, idx: int, *, now: float) -> bool:
        n = self.store.execute(
            "UPDATE tasks SET status = 'running', attempts = attempts + 1, started_at = ? "
            "WHERE batch_id = ? AND idx = ? AND status = 'pending'", (now, batch_id, idx))
        return n == 1

    def requeue(self, batch_id: str, idx: int) -> None:
        self.store.execute(
            "UPDATE tasks SET status = 'pending' WHERE batch_id = ? AND idx = ? AND status = 'running'",
            (batch_id, idx))

    def finish_task(self, batch_id: str, idx: int, result: TaskResult, *, now: float) -> None:
        sets = ", ".join(f"{c} = ?" for c in _RESULT_COLS)
        r = result
        values = (r.status, r.text, r.model_id, r.tier, None if r.is_local is None else int(r.is_local),
                  r.routed_intent, r.difficulty, r.fallbacks, r.latency_s, r.tokens_in, r.tokens_out,
                  r.cost_usd, r.http_status, r.error)
        self.store.execute(f"UPDATE tasks SET {sets}, finished_at = ? WHERE batch_id = ? AND idx = ?",
                           (*values, now, batch_id, idx))

    # ---- giving up: `wiltonctl hpc cancel` / `hpc delete` ----------------------------------------

    def cancel(self, batch_id: str, *, now: float, reason: str) -> int:
        """Unfinished tasks become errors ("cancelled: <reason>"), the batch done and unleased, so no
        resume or orphan sweep picks it up again; answers already stored stay. Returns how many."""
        with self.store.transaction():
            n = self.store.execute(
                "UPDATE tasks SET status = 'error', error = ?, finished_at = ? "
                "WHERE batch_id = ? AND status IN ('pending', 'running')", (f"cancelled: {reason}", now, batch_id))
            self.store.execute(
                "UPDATE task_batches SET status = 'done', lease_owner = NULL, lease_until = 0, finished_at = ? "
                "WHERE id = ?", (now, batch_id))
        return n

    def delete(self, batch_id: str) -> int:
        """The batch and every task of it, gone; returns how many tasks."""
        with self.store.transaction():
            n = self.store.execute("DELETE FROM tasks WHERE batch_id = ?", (batch_id,))
            self.store.execute("DELETE FROM task_batches WHERE id = ?", (batch_id,))
        return n

    # ---- reading ----------------------------------------------------------------------------

    def batch(self, batch_id: str) -> BatchInfo | None:
        found = self.batches(ids=[batch_id])
        return found[0] if found else None

    def batches(self, *, ids: Sequence[str] | None = None, limit: int = 20,
                unfinished_only: bool = False) -> list[BatchInfo]:
        sql = ("SELECT id, name, source, created_at, concurrency, status, lease_owner, lease_until, finished_at "
               "FROM task_batches")
        params: list[Any] = []
        where = []
        if ids is not None:
            if not ids:
                return []
            where.append("id IN (" + ", ".join("?" for _ in ids) + ")")
            params += list(ids)
        if unfinished_only:
            where.append("status <> 'done'")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT ?"
        params.append(limit)
        rows = self.store.query(sql, params)
        out = []
        for row in rows:
            counts = {str(s): int(n) for s, n in self.store.query(
                "SELECT status, COUNT(*) FROM tasks WHERE batch_id = ? GROUP BY status", (row[0],))}
            out.append(BatchInfo(str(row[0]), str(row[1]), str(row[2]), float(row[3]), int(row[4]), str(row[5]),
                                 row[6], float(row[7] or 0.0), None if row[8] is None else float(row[8]), counts))
        return out

    def tasks(self, batch_id: str) -> list[StoredTask]:
        cols = ", ".join(_RESULT_COLS)
        rows = self.store.query(
            f"SELECT idx, priority, intent, request, attempts, started_at, finished_at, {cols} "
            "FROM tasks WHERE batch_id = ? ORDER BY idx", (batch_id,))
        out = []
        for row in rows:
            r = dict(zip(_RESULT_COLS, row[7:], strict=True))
            result = TaskResult(
                status=str(r["status"]), text=r["response_text"], model_id=r["model_id"], tier=r["tier"],
                is_local=None if r["is_local"] is None else bool(r["is_local"]), routed_intent=r["routed_intent"],
                difficulty=r["difficulty"], fallbacks=r["fallbacks"], latency_s=float(r["latency_s"] or 0.0),
                tokens_in=int(r["tokens_in"] or 0), tokens_out=int(r["tokens_out"] or 0),
                cost_usd=float(r["cost_usd"] or 0.0), http_status=r["http_status"], error=r["error"])
            out.append(StoredTask(int(row[0]), int(row[1]), row[2], json.loads(row[3]), int(row[4]),
                                  row[5], row[6], result))
        return out
