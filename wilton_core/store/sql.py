"""The store's one code path: every query, for both dialects, over a per-thread connection.

`SqliteStore` and `PostgresStore` only say how to connect and how their dialect differs
(placeholder style, how to begin a write transaction, how to lock migrations, how to run a
script). Everything else — the thin SQL API, migrations, ledger, aggregates, control state,
kv — lives here once.

Connections: one per thread, opened on first use and reused, because sqlite3 connections must
not be shared between threads and a psycopg connection serialises its callers anyway. A
PostgreSQL connection found broken (server restart) is dropped so the next call reconnects.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wilton_core.errors import StoreError
from wilton_core.store.aggregation import (
    LEDGER_COLUMNS,
    ROLLUP_BUCKET_S,
    agg_deltas,
    fallback_deltas,
    hist_deltas,
    ledger_row,
    rollup_deltas,
)
from wilton_core.store.base import (
    Aggregates,
    ControlHistoryRow,
    ControlState,
    FallbackAggRow,
    HistogramRow,
    LedgerAggRow,
    PhiWindow,
)
from wilton_core.store.migrate import MIGRATIONS_DIR, Migration, discover_migrations
from wilton_core.types import LedgerRecord

__all__ = ["SqlStore"]

_AGG_KEY = ("tier", "model_id", "provider", "intent", "status", "error_class")
_AGG_VALUES = (
    "requests", "tokens_in", "tokens_out", "cost_usd", "latency_sum_s", "ttft_sum_s", "ttft_count",
    "fallbacks",
)
_CONTROL_FIELDS = (
    "phi_target", "threshold", "bias", "measured_phi", "error", "integral", "updated_at", "steps",
)
_BOOL_COLUMNS = frozenset({"is_local", "stream", "local_only"})
_ROW_COLUMNS = ("id", *LEDGER_COLUMNS)


def _upsert(table: str, keys: Sequence[str], values: Sequence[str]) -> str:
    """INSERT ... ON CONFLICT DO UPDATE adding to the counters (SQLite >= 3.24 and PostgreSQL)."""
    cols = (*keys, *values)
    sets = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values)
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )


_INSERT_LEDGER = (
    f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join('?' for _ in LEDGER_COLUMNS)})"
)
_INSERT_PROMPT = ("INSERT INTO request_prompts (request_id, ts, prompt) VALUES (?, ?, ?)"
                  " ON CONFLICT (request_id) DO NOTHING")
_UPSERT_AGG = _upsert("ledger_agg", _AGG_KEY, _AGG_VALUES)
_UPSERT_HIST = _upsert("latency_hist", ("tier", "model_id", "kind", "le"), ("count",))
_UPSERT_FALLBACK = _upsert("fallback_agg", ("model_id", "reason"), ("count",))
_UPSERT_ROLLUP = _upsert(
    "ledger_rollup", ("bucket_ts", "is_local"), ("requests", "tokens", "errors", "cost_usd")
)

# Integer SUMs are cast because PostgreSQL widens SUM(bigint) to numeric (a Decimal in Python).
# phi counts requests a model SERVED (status ok or stream_error); a request no model could serve
# (status "error") is an error, not a local or an API request.
_LEDGER_WINDOW = """
SELECT COALESCE(CAST(SUM(CASE WHEN status <> 'error' THEN 1 ELSE 0 END) AS BIGINT), 0),
       COALESCE(CAST(SUM(CASE WHEN status <> 'error' AND is_local = 1 THEN 1 ELSE 0 END) AS BIGINT), 0),
       COALESCE(CAST(SUM(CASE WHEN status <> 'error' THEN tokens_in + tokens_out ELSE 0 END) AS BIGINT), 0),
       COALESCE(CAST(SUM(CASE WHEN status <> 'error' AND is_local = 1 THEN tokens_in + tokens_out ELSE 0 END)
                     AS BIGINT), 0),
       COALESCE(CAST(SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END) AS BIGINT), 0)
FROM ledger WHERE ts >= ? AND ts < ? AND COALESCE(intent, '') NOT IN ('stt', 'tts')
"""
_ROLLUP_WINDOW = """
SELECT is_local,
       COALESCE(CAST(SUM(requests) AS BIGINT), 0),
       COALESCE(CAST(SUM(tokens) AS BIGINT), 0),
       COALESCE(CAST(SUM(errors) AS BIGINT), 0)
FROM ledger_rollup WHERE bucket_ts >= ? AND bucket_ts < ? GROUP BY is_local
"""


class SqlStore:
    """Base of both backends. Subclasses implement the `_` hooks at the bottom."""

    dialect: str = ""

    def __init__(
        self,
        safe_url: str,
        *,
        migrations_dir: Path = MIGRATIONS_DIR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = safe_url
        self._migrations_dir = migrations_dir
        self._clock = clock
        self._local = threading.local()
        self._conns: list[tuple[weakref.ref[threading.Thread], Any]] = []
        self._conns_lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ connections

    def _conn(self) -> Any:
        if self._closed:
            raise StoreError(f"{self.dialect} store {self.url}: already closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self._is_broken(conn):
            return conn
        if conn is not None:
            self._forget(conn)
        conn = self._connect()
        self._local.conn = conn
        self._local.depth = 0
        with self._conns_lock:
            # Connections of threads that have ended are closed here rather than leaked.
            alive = []
            for ref, c in self._conns:
                t = ref()
                if t is not None and t.is_alive():
                    alive.append((ref, c))
                else:
                    self._close_quietly(c)
            alive.append((weakref.ref(threading.current_thread()), conn))
            self._conns = alive
        return conn

    def _forget(self, conn: Any) -> None:
        self._local.conn = None
        self._local.depth = 0
        with self._conns_lock:
            self._conns = [(r, c) for r, c in self._conns if c is not conn]
        self._close_quietly(conn)

    def ping(self) -> None:
        """Open (or reuse) this thread's connection and run a trivial query."""
        self.query_one("SELECT 1")

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
            self._closed = True
        for _, c in conns:
            self._close_quietly(c)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn driver errors into StoreError; drop a connection the server has broken."""
        try:
            yield
        except self._driver_errors() as err:
            conn = getattr(self._local, "conn", None)
            if conn is not None and self._is_broken(conn):
                self._forget(conn)
            raise StoreError(f"{self.dialect} store {self.url}: {self._describe(err)}") from err

    # ------------------------------------------------------------------ thin SQL API

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        conn = self._conn()
        with self._errors():
            cur = conn.cursor()
            try:
                cur.execute(self._translate(sql), tuple(params))
                return int(cur.rowcount)
            finally:
                cur.close()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        conn = self._conn()
        with self._errors():
            cur = conn.cursor()
            try:
                cur.executemany(self._translate(sql), [tuple(r) for r in rows])
            finally:
                cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._query(sql, params)
        except StoreError:
            # A SELECT outside a transaction is safe to repeat: after a server restart the
            # first use of the old connection fails, and a fresh connection answers.
            connection_dropped = getattr(self._local, "conn", None) is None
            in_transaction = int(getattr(self._local, "depth", 0)) > 0
            if not connection_dropped or in_transaction:
                raise
            if not sql.lstrip().upper().startswith("SELECT"):
                raise
            return self._query(sql, params)

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._conn()
        with self._errors():
            cur = conn.cursor()
            try:
                cur.execute(self._translate(sql), tuple(params))
                return [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction on this thread's connection; nested blocks join the outer one."""
        yield from self._transaction(self._begin_write_sql())

    @contextmanager
    def _read_snapshot(self) -> Iterator[None]:
        """A read-only transaction so that several SELECTs see one consistent state."""
        yield from self._transaction(self._begin_read_sql())

    def _transaction(self, begin_sql: str) -> Iterator[None]:
        conn = self._conn()
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._errors():
            conn.execute(begin_sql)
        self._local.depth = 1
        try:
            yield
        except BaseException:
            self._local.depth = 0
            self._rollback_quietly(conn)
            raise
        self._local.depth = 0
        try:
            with self._errors():
                conn.execute("COMMIT")
        except StoreError:
            self._rollback_quietly(conn)
            raise

    def _rollback_quietly(self, conn: Any) -> None:
        try:
            conn.execute("ROLLBACK")
        except Exception:  # the original error is the one worth raising
            if self._is_broken(conn):
                self._forget(conn)

    # ------------------------------------------------------------------ migrations

    def migrate(self) -> None:
        """Apply every pending migration file in version order, all in one locked transaction."""
        migrations = discover_migrations(self._migrations_dir, self.dialect)
        with self.transaction():
            self._lock_migrations()
            self.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {int(v) for (v,) in self.query("SELECT version FROM schema_migrations")}
            for m in migrations:
                if m.version not in done:
                    self._apply(m)

    def _apply(self, m: Migration) -> None:
        try:
            self._run_script(m.sql)
        except StoreError as err:
            raise StoreError(f"migration {m.filename} failed: {err}") from err
        self.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (m.version, m.name, self._clock()),
        )

    def applied_migrations(self) -> list[tuple[int, str]]:
        return [(int(v), str(n)) for v, n in self.query(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        )]

    # ------------------------------------------------------------------ ledger

    def insert_ledger(self, records: Sequence[LedgerRecord]) -> None:
        """Insert a batch and fold it into the aggregates, in one transaction.

        Upserts go in sorted key order so that two replicas writing overlapping keys at once
        on PostgreSQL lock rows in the same order and cannot deadlock.
        """
        if not records:
            return
        rows = [ledger_row(r) for r in records]
        agg = sorted((*k, *v) for k, v in agg_deltas(records).items())
        hist = sorted((*k, v) for k, v in hist_deltas(records).items())
        fb = sorted((*k, v) for k, v in fallback_deltas(records).items())
        roll = sorted((*k, *v) for k, v in rollup_deltas(records).items())
        with self.transaction():
            self.executemany(_INSERT_LEDGER, rows)
            self.executemany(_UPSERT_AGG, agg)
            self.executemany(_UPSERT_HIST, hist)
            self.executemany(_UPSERT_FALLBACK, fb)
            self.executemany(_UPSERT_ROLLUP, roll)
            prompts = [(r.request_id, r.ts, r.prompt) for r in records if r.prompt]
            if prompts:
                self.executemany(_INSERT_PROMPT, prompts)

    def count_ledger(self) -> int:
        row = self.query_one("SELECT COUNT(*) FROM ledger")
        return int(row[0]) if row else 0

    def prune_ledger(self, before: float) -> int:
        """Delete ledger rows older than `before`; aggregates and rollup keep their totals."""
        return self.execute("DELETE FROM ledger WHERE ts < ?", (before,))

    def phi_window(self, since: float, until: float) -> PhiWindow:
        """Exact counts over since <= ts < until.

        Whole seconds come from ledger_rollup; only the partial seconds at the two edges are
        read from the ledger (through its ts index), so the cost does not grow with the window.
        """
        w = PhiWindow(since=since, until=until)
        if not until > since:
            return w
        lo = math.ceil(since / ROLLUP_BUCKET_S) * ROLLUP_BUCKET_S
        hi = math.floor(until / ROLLUP_BUCKET_S) * ROLLUP_BUCKET_S
        with self._read_snapshot():
            if lo >= hi:
                self._add_ledger_span(w, since, until)
                return w
            self._add_ledger_span(w, since, lo)
            self._add_ledger_span(w, hi, until)
            for is_local, requests, tokens, errors in self.query(_ROLLUP_WINDOW, (lo, hi)):
                w.requests += int(requests)
                w.tokens += int(tokens)
                w.errors += int(errors)
                if int(is_local):
                    w.local_requests += int(requests)
                    w.local_tokens += int(tokens)
        return w

    def _add_ledger_span(self, w: PhiWindow, since: float, until: float) -> None:
        if not until > since:
            return
        row = self.query_one(_LEDGER_WINDOW, (since, until))
        if row is None:
            return
        w.requests += int(row[0])
        w.local_requests += int(row[1])
        w.tokens += int(row[2])
        w.local_tokens += int(row[3])
        w.errors += int(row[4])

    def recent_difficulties(self, since: float, limit: int = 5000) -> list[float]:
        """Difficulties of requests since `since`, newest first, at most `limit`."""
        rows = self.query(
            "SELECT difficulty FROM ledger WHERE ts >= ? AND difficulty IS NOT NULL ORDER BY ts DESC, id DESC LIMIT ?",
            (since, int(limit)),
        )
        return [float(d) for (d,) in rows]

    def ledger_rows(
        self, since: float, until: float, columns: Sequence[str] | None = None
    ) -> dict[str, list[Any]]:
        cols = tuple(columns) if columns is not None else _ROW_COLUMNS
        unknown = [c for c in cols if c not in _ROW_COLUMNS]
        if unknown or not cols:
            raise StoreError(f"unknown ledger column(s) {unknown}; known: {', '.join(_ROW_COLUMNS)}")
        rows = self.query(
            f"SELECT {', '.join(cols)} FROM ledger WHERE ts >= ? AND ts < ? ORDER BY ts, id",
            (since, until),
        )
        out: dict[str, list[Any]] = {c: [] for c in cols}
        for i, c in enumerate(cols):
            values = [r[i] for r in rows]
            out[c] = [bool(v) for v in values] if c in _BOOL_COLUMNS else values
        return out

    def aggregates(self) -> Aggregates:
        """The running aggregate tables, read in one snapshot (the exporter's whole input)."""
        with self._read_snapshot():
            agg_rows = self.query(
                f"SELECT {', '.join((*_AGG_KEY, *_AGG_VALUES))} FROM ledger_agg "
                f"ORDER BY {', '.join(_AGG_KEY)}"
            )
            hist_rows = self.query(
                "SELECT tier, model_id, kind, le, count FROM latency_hist ORDER BY tier, model_id, kind, le"
            )
            fb_rows = self.query("SELECT model_id, reason, count FROM fallback_agg ORDER BY model_id, reason")
        ledger = [
            LedgerAggRow(
                str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), int(r[6]), int(r[7]),
                int(r[8]), float(r[9]), float(r[10]), float(r[11]), int(r[12]), int(r[13]),
            )
            for r in agg_rows
        ]
        sums: dict[tuple[str, str, str], float] = {}
        for a in ledger:
            for kind, value in (("latency", a.latency_sum_s), ("ttft", a.ttft_sum_s)):
                sums[(a.tier, a.model_id, kind)] = sums.get((a.tier, a.model_id, kind), 0.0) + value
        grouped: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
        for tier, model_id, kind, le, count in hist_rows:
            grouped.setdefault((str(tier), str(model_id), str(kind)), []).append((float(le), int(count)))
        histograms = [
            HistogramRow(
                tier=k[0], model_id=k[1], kind=k[2], buckets=tuple(b),
                count=b[-1][1] if b else 0, sum=sums.get(k, 0.0),
            )
            for k, b in grouped.items()
        ]
        fallbacks = [FallbackAggRow(str(m), str(r), int(c)) for m, r, c in fb_rows]
        return Aggregates(ledger=ledger, histograms=histograms, fallbacks=fallbacks)

    # ------------------------------------------------------------------ control state

    def get_control_state(self) -> ControlState | None:
        row = self.query_one(f"SELECT {', '.join(_CONTROL_FIELDS)}, extra FROM control_state WHERE id = 1")
        if row is None:
            return None
        try:
            extra = json.loads(row[-1]) if row[-1] else {}
        except ValueError:
            extra = {}
        tie = extra.pop("tie_api_share", 0.0) if isinstance(extra, dict) else 0.0
        return ControlState(
            tie_api_share=float(tie) if isinstance(tie, int | float) and 0.0 <= tie <= 1.0 else 0.0,
            phi_target=float(row[0]),
            threshold=float(row[1]),
            bias=float(row[2]),
            measured_phi=None if row[3] is None else float(row[3]),
            error=None if row[4] is None else float(row[4]),
            integral=float(row[5]),
            updated_at=float(row[6]),
            steps=int(row[7]),
            extra=extra if isinstance(extra, dict) else {},
        )

    def put_control_state(self, state: ControlState) -> None:
        values = asdict(state)
        cols = (*_CONTROL_FIELDS, "extra")
        params = [values[f] for f in _CONTROL_FIELDS]
        try:
            # the tie share rides in the JSON column: a typed field in code, no schema change
            params.append(json.dumps({**state.extra, "tie_api_share": state.tie_api_share}, sort_keys=True,
                                     allow_nan=False))
        except (TypeError, ValueError) as err:
            raise StoreError(f"control state extra is not plain JSON: {err}") from None
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
        self.execute(
            f"INSERT INTO control_state (id, {', '.join(cols)}) VALUES (1, {', '.join('?' for _ in cols)}) "
            f"ON CONFLICT (id) DO UPDATE SET {sets}",
            params,
        )

    def append_control_history(
        self,
        ts: float,
        phi_target: float,
        measured_phi: float | None,
        threshold: float,
        error: float | None,
    ) -> None:
        self.execute(
            "INSERT INTO control_history (ts, phi_target, measured_phi, threshold, error) VALUES (?, ?, ?, ?, ?)",
            (ts, phi_target, measured_phi, threshold, error),
        )

    def control_history(self, since: float, until: float | None = None) -> list[ControlHistoryRow]:
        """Steps with since <= ts (< until when given), oldest first."""
        sql = "SELECT ts, phi_target, measured_phi, threshold, error FROM control_history WHERE ts >= ?"
        params: list[Any] = [since]
        if until is not None:
            sql += " AND ts < ?"
            params.append(until)
        rows = self.query(sql + " ORDER BY ts", params)
        return [
            ControlHistoryRow(
                float(ts), float(target), None if phi is None else float(phi), float(thr),
                None if err is None else float(err),
            )
            for ts, target, phi, thr, err in rows
        ]

    # ------------------------------------------------------------------ kv

    def kv_get(self, key: str) -> str | None:
        row = self.query_one("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def kv_set(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, self._clock()),
        )

    def kv_items(self, prefix: str = "") -> dict[str, str]:
        """Every key starting with `prefix` (e.g. "router_health:") and its value."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.query("SELECT key, value FROM kv WHERE key LIKE ? ESCAPE '\\' ORDER BY key", (escaped + "%",))
        return {str(k): str(v) for k, v in rows}

    def kv_delete(self, key: str) -> bool:
        return self.execute("DELETE FROM kv WHERE key = ?", (key,)) > 0

    # ------------------------------------------------------------------ dialect hooks

    def _connect(self) -> Any:
        raise NotImplementedError

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    def _is_broken(self, conn: Any) -> bool:
        return False

    def _close_quietly(self, conn: Any) -> None:
        # Closing a dead connection must never raise.
        with contextlib.suppress(Exception):
            conn.close()

    def _describe(self, err: BaseException) -> str:
        return str(err).strip() or type(err).__name__

    def _translate(self, sql: str) -> str:
        return sql

    def _begin_write_sql(self) -> str:
        return "BEGIN"

    def _begin_read_sql(self) -> str:
        return "BEGIN"

    def _lock_migrations(self) -> None:
        """Serialise concurrent migrate() calls (inside the migration transaction)."""

    def _run_script(self, sql: str) -> None:
        raise NotImplementedError
