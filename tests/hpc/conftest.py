"""hpc fixtures: a store per test (SQLite always, PostgreSQL when the server runs) and a task file."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wilton_core.hpc.model import BatchSpec, parse_task_file
from wilton_core.hpc.repo import TaskRepo
from wilton_core.store import SqlStore, open_store

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def hpc_pg_url() -> Iterator[str]:
    name = f"wilton_hpc_{secrets.token_hex(4)}"
    try:
        _admin(f"CREATE DATABASE {name}")
    except Exception as err:  # the server is an environment fact, not a code failure
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 not available: {err}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'hpc.db'}")
    else:
        s = open_store(request.getfixturevalue("hpc_pg_url"))
        # one database per session: start every test from empty tables
        s.execute("DELETE FROM tasks")
        s.execute("DELETE FROM task_batches")
    yield s
    s.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hpc.db'}"


@pytest.fixture
def repo(store: SqlStore) -> TaskRepo:
    return TaskRepo(store)


def _spec(n: int = 5, priorities: list[int] | None = None, **task_kw: object) -> BatchSpec:
    prios = priorities or [0] * n
    return parse_task_file({"name": "t", "tasks": [
        {"prompt": f"task {i}", "priority": prios[i], "max_tokens": 8, **task_kw} for i in range(len(prios))]})


@pytest.fixture
def make_spec() -> Callable[..., BatchSpec]:
    """make_spec(n=5, priorities=None, **task fields) -> a valid BatchSpec of prompt tasks."""
    return _spec
