"""SQLite backend: one file in WAL mode, shared by every process on the host.

WAL lets readers run while one writer commits; `busy_timeout` makes a writer wait (up to
`busy_timeout_s`) for another process's write lock instead of failing with "database is
locked"; every write transaction starts with BEGIN IMMEDIATE, which takes the write lock up
front — a deferred transaction that upgrades from read to write can fail with SQLITE_BUSY
without ever calling the busy handler. synchronous=NORMAL is durable across process crashes
in WAL mode (a power loss may drop the last commits, never corrupt the file).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from wilton_core.errors import StoreError
from wilton_core.store.migrate import split_sqlite_script
from wilton_core.store.sql import SqlStore

__all__ = ["SqliteStore"]


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(
        self, path: str | Path, *, safe_url: str | None = None, busy_timeout_s: float = 10.0, **kwargs: Any
    ) -> None:
        self.path = Path(path)
        super().__init__(safe_url or f"sqlite:///{self.path}", **kwargs)
        self.busy_timeout_s = busy_timeout_s

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"sqlite store {self.url}: cannot create directory {self.path.parent}: {err.strerror or err}"
            ) from None
        try:
            # isolation_level=None: no implicit BEGINs; transactions are explicit (BEGIN IMMEDIATE).
            # check_same_thread=False only so close() can close every thread's connection.
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise StoreError(f"sqlite store {self.url}: {err}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            self._ensure_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as err:
            conn.close()
            raise StoreError(f"sqlite store {self.url}: {err}") from None
        return conn

    def _ensure_wal(self, conn: sqlite3.Connection) -> None:
        # WAL is persistent in the file, so only the very first opener switches it; that switch
        # needs a moment of exclusive access, which concurrent first opens may contend for.
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() == "wal":
                    return
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def _begin_write_sql(self) -> str:
        return "BEGIN IMMEDIATE"

    def _begin_read_sql(self) -> str:
        return "BEGIN DEFERRED"

    def _run_script(self, sql: str) -> None:
        # BEGIN IMMEDIATE (taken by migrate's transaction) already excludes other migrators.
        for statement in split_sqlite_script(sql):
            self.execute(statement)
