"""Fixtures shared by every test area."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from wilton_core.testing.postgres import schema_url, temporary_database

# Property tests: full randomness locally (new examples every run find new bugs); in CI
# (CI=true) the same examples every run, so a red CI always means a change, never a dice roll.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this session; skipped (not failed) when no server runs."""
    try:
        cm = temporary_database()
        url = cm.__enter__()
    except Exception as err:  # the server is an environment fact, not a code failure
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 not available: {err}")
    try:
        yield url
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """An empty schema of the session database, as a store URL: each test starts from nothing."""
    return schema_url(pg_database)
