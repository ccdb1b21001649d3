"""Store fixtures: every contract test runs against SQLite (tmp_path) and PostgreSQL.

PostgreSQL gets ONE temporary database per test session (`wilton_test_<random>`, dropped at the
end) and each test gets its own schema in it, selected through the connection's search_path,
so tests are isolated without paying for a CREATE DATABASE each.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from wilton_core.store import SqlStore, open_store

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh database for this session; skipped (not failed) when no server runs."""
    name = f"wilton_test_{secrets.token_hex(4)}"
    try:
        _admin(f"CREATE DATABASE {name}")
    except Exception as err:  # the server is an environment fact, not a code failure
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 not available: {err}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_schema_url(base: str) -> str:
    schema = f"t_{secrets.token_hex(6)}"
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming an empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'wilton.db'}"
    base = request.getfixturevalue("pg_database")
    return pg_schema_url(base)


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., SqlStore]]:
    """Open (and close at teardown) as many stores on the same backend and namespace as a test needs."""
    opened: list[SqlStore] = []

    def make(**options: object) -> SqlStore:
        s = open_store(store_url, **options)  # type: ignore[arg-type]
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[..., SqlStore]) -> SqlStore:
    return make_store()
