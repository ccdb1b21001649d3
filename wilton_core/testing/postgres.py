"""Throwaway PostgreSQL databases and schemas for tests and benchmarks (127.0.0.1 only).

One database per test session (`temporary_database`), one schema per test inside it
(`schema_url`): tests are isolated without paying for a CREATE DATABASE each.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

__all__ = ["ADMIN_URL", "schema_url", "temporary_database"]

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin(sql: str, admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@contextmanager
def temporary_database(prefix: str = "wilton_test", admin_url: str = ADMIN_URL) -> Iterator[str]:
    """Create a fresh database, yield its URL, drop it (even with open connections) at the end.

    Raises whatever psycopg raises when no server answers; callers decide to skip or fail.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    _admin(f"CREATE DATABASE {name}", admin_url)
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", admin_url)


def schema_url(database_url: str) -> str:
    """A new empty schema in the database, as a URL whose connections use it (search_path)."""
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{database_url}?options={quote(f'-csearch_path={schema}')}"
