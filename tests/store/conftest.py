"""Store fixtures: every contract test runs against SQLite (tmp_path) and PostgreSQL.

PostgreSQL gets ONE temporary database per test session (`wilton_test_<random>`, dropped at the
end) and each test gets its own schema in it, selected through the connection's search_path,
so tests are isolated without paying for a CREATE DATABASE each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wilton_core.store import SqlStore, open_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL naming an empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'wilton.db'}"
    return str(request.getfixturevalue("pg_url"))


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
