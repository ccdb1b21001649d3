from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wilton_core.exporter.synthetic import seed_side_tables, synthetic_records
from wilton_core.store.sqlite import SqliteStore
from wilton_core.types import LedgerRecord

NOW = 1_700_000_000.0


def ledger_batch(n: int, now: float = NOW, start: int = 0) -> list[LedgerRecord]:
    return synthetic_records(n, now, start=start)


def fill(store: SqliteStore, n: int = 400, now: float = NOW) -> None:
    store.insert_ledger(ledger_batch(n, now))
    seed_side_tables(store, now)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "wilton.db")
    s.migrate()
    yield s
    s.close()
