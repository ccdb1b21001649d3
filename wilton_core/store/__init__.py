"""The shared store: SQLite (one host) or PostgreSQL (several hosts), one schema, one code path.

Open it from a URL::

    from wilton_core.store import open_store
    store = open_store("sqlite:///data/wilton.db")        # relative; sqlite:////abs/path.db is absolute
    store = open_store("postgresql://user@db-host:5432/wilton")

`open_store` connects once (a readable `StoreError` if it cannot: never a traceback, never the
password) and, unless `migrate=False`, applies pending migrations. `store.url` is safe to log.
Readers that must never create state (`wiltonctl insights list`, `hpc status`) pass
`create=False`: a SQLite file that does not exist is then a `StoreNotFoundError`, and neither
its directory nor the database is created.

Thin SQL API, for areas that keep their own tables
--------------------------------------------------
Add your tables as migration files in `wilton_core/store/migrations/` (your reserved version
range is listed in `wilton_core/store/migrate.py`), then use, from any thread:

``store.execute(sql, params=()) -> int``
    one statement; returns the affected row count.
``store.executemany(sql, rows)``
    the same statement for every row (batched by the driver).
``store.query(sql, params=()) -> list[tuple]`` / ``store.query_one(sql, params=()) -> tuple | None``
    SELECT (or ... RETURNING) rows as plain tuples.
``with store.transaction(): ...``
    everything the current thread runs inside commits together, or rolls back if the block
    raises. Nested blocks join the outer transaction. On SQLite it takes the write lock at
    BEGIN, so keep it short.

Write `?` placeholders; they are translated to `%s` for PostgreSQL (and literal `%` escaped),
so one SQL string serves both. `store.dialect` is "sqlite" or "postgres" for the rare statement
that must differ. Stick to portable SQL: TEXT, BIGINT, INTEGER, DOUBLE PRECISION; 0/1 integers
for booleans; `INSERT ... ON CONFLICT (...) DO UPDATE SET x = excluded.x` for upserts; CAST
integer SUMs to BIGINT (PostgreSQL widens them to numeric). Every driver error surfaces as
`wilton_core.errors.StoreError`.

Domain API (see `wilton_core.store.base.Store`): `insert_ledger`, `phi_window`,
`recent_difficulties`, `ledger_rows`, `aggregates`, `count_ledger`, control state and history,
`kv_get`/`kv_set`/`kv_items`. Off the request path, write the ledger through
`wilton_core.store.ledger_writer.LedgerWriter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wilton_core.errors import StoreError
from wilton_core.store.base import (
    LATENCY_BUCKETS,
    Aggregates,
    ControlHistoryRow,
    ControlState,
    FallbackAggRow,
    HistogramRow,
    LedgerAggRow,
    PhiWindow,
    Store,
)
from wilton_core.store.sql import SqlStore
from wilton_core.store.url import parse_store_url, redact_url

__all__ = [
    "LATENCY_BUCKETS",
    "Aggregates",
    "ControlHistoryRow",
    "ControlState",
    "FallbackAggRow",
    "HistogramRow",
    "LedgerAggRow",
    "PhiWindow",
    "SqlStore",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "open_store",
    "redact_url",
]


class StoreNotFoundError(StoreError):
    """`open_store(url, create=False)` on a SQLite file that does not exist."""


def open_store(url: str, *, migrate: bool = True, create: bool = True, **options: Any) -> SqlStore:
    """Connect to the store named by `url` and (by default) bring its schema up to date.

    `create=False` opens only a store that exists: a missing SQLite file is a
    `StoreNotFoundError` and nothing is created (a PostgreSQL database is never created here).
    `options` go to the backend: `busy_timeout_s` (SQLite), `connect_timeout_s` (PostgreSQL),
    `migrations_dir`, `clock`.
    """
    target = parse_store_url(url)
    store: SqlStore
    if target.dialect == "sqlite":
        from wilton_core.store.sqlite import SqliteStore

        if not create and not Path(target.dsn).is_file():
            raise StoreNotFoundError(f"no store at {Path(target.dsn).absolute()} ({target.safe_url}): nothing "
                                     "has been recorded there yet")
        store = SqliteStore(Path(target.dsn), safe_url=target.safe_url, **options)
    else:
        from wilton_core.store.postgres import PostgresStore

        store = PostgresStore(target.dsn, **options)
    try:
        store.ping()
        if migrate:
            store.migrate()
    except StoreError:
        store.close()
        raise
    return store
