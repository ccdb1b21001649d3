"""Migration file discovery and script splitting (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wilton_core.errors import StoreError
from wilton_core.store.migrate import MIGRATIONS_DIR, discover_migrations, split_sqlite_script


def write(d: Path, name: str, sql: str = "SELECT 1;\n") -> None:
    (d / name).write_text(sql)


def test_dialect_files_and_order(tmp_path: Path) -> None:
    write(tmp_path, "0002_b.sql")
    write(tmp_path, "0001_a.sqlite.sql", "-- lite\n")
    write(tmp_path, "0001_a.postgres.sql", "-- pg\n")
    write(tmp_path, "0010_c.sql")
    write(tmp_path, "README.md")
    lite = discover_migrations(tmp_path, "sqlite")
    pg = discover_migrations(tmp_path, "postgres")
    assert [(m.version, m.filename) for m in lite] == [(1, "0001_a.sqlite.sql"), (2, "0002_b.sql"), (10, "0010_c.sql")]
    assert pg[0].filename == "0001_a.postgres.sql"
    assert pg[0].sql == "-- pg\n" and pg[0].name == "a"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["0001_a.sql", "0001_b.sql"], "two migrations claim version 0001"),
        (["0001_a.sql", "0001_a.sqlite.sql"], "both a portable file and dialect files"),
        (["0001_a.postgres.sql"], "no file for sqlite"),
        (["1_a.sql"], "misnamed"),
        (["0001_Bad-Name.sql"], "misnamed"),
    ],
)
def test_clashes_are_readable(tmp_path: Path, files: list[str], message: str) -> None:
    for f in files:
        write(tmp_path, f)
    with pytest.raises(StoreError, match=message):
        discover_migrations(tmp_path, "sqlite")


def test_the_shipped_migrations_resolve_for_both_dialects() -> None:
    for dialect in ("sqlite", "postgres"):
        versions = [m.version for m in discover_migrations(MIGRATIONS_DIR, dialect)]
        assert versions[:4] == [1, 2, 3, 4]


def test_split_sqlite_script() -> None:
    sql = (
        "-- header; with a semicolon\n"
        "CREATE TABLE t (a TEXT DEFAULT 'x;y');\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET a = 'z;';\nEND;\n"
        "-- trailing comment\n"
    )
    parts = split_sqlite_script(sql)
    assert len(parts) == 2
    assert parts[0].endswith("DEFAULT 'x;y');")
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;")
    with pytest.raises(StoreError, match="unterminated"):
        split_sqlite_script("CREATE TABLE t (a TEXT)")
