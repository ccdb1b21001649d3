"""PostgreSQL-specific: a server-side disconnect (restart, idle kill) is survived."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from wilton_core.errors import StoreError
from wilton_core.store import SqlStore, open_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def store_url(pg_url: str) -> str:
    return pg_url


@pytest.fixture
def pg_store(store_url: str) -> Iterator[SqlStore]:
    s = open_store(store_url)
    yield s
    s.close()


def _kill_backends(base_url: str) -> int:
    db = base_url.split("?")[0]
    with psycopg.connect(db, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_reads_reconnect_after_the_server_drops_the_connection(pg_store: SqlStore, store_url: str) -> None:
    pg_store.kv_set("k", "v")
    assert _kill_backends(store_url) >= 1
    assert pg_store.kv_get("k") == "v"  # a SELECT: retried once on a fresh connection


def test_writes_fail_once_then_work(pg_store: SqlStore, store_url: str) -> None:
    pg_store.kv_set("k", "v1")
    assert _kill_backends(store_url) >= 1
    with pytest.raises(StoreError, match="postgres store"):
        pg_store.kv_set("k", "v2")  # not repeated blindly: the caller decides (the writer retries)
    pg_store.kv_set("k", "v3")
    assert pg_store.kv_get("k") == "v3"
