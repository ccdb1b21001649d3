"""hpc fixtures: a store per test (SQLite always, PostgreSQL when the server runs) and a task file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wilton_core.hpc.model import BatchSpec, parse_task_file
from wilton_core.hpc.repo import TaskRepo
from wilton_core.store import SqlStore, open_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'hpc.db'}")
    else:
        s = open_store(request.getfixturevalue("pg_url"))
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
