"""Versioned schema migrations: discovery (pure) and the per-dialect choice of file.

Files live in `wilton_core/store/migrations/` and are named `NNNN_name.sql` (portable SQL) or
`NNNN_name.sqlite.sql` + `NNNN_name.postgres.sql` when the dialects differ. Every file is
applied once, in version order, and recorded in `schema_migrations`. Version ranges are
reserved per area so parallel work does not collide:

    0001-0009 store (ledger, aggregates, control state, kv)   0010-0019 auth/audit
    0020-0029 insight reports   0030-0039 hpc tasks   0040-0049 model registry status

Write migrations so they are safe to re-run (`CREATE TABLE IF NOT EXISTS`), and never edit
one that has shipped: add a new version instead. The runner itself (`SqlStore.migrate` in sql.py)
holds an exclusive lock for the whole run, so two processes starting at once are safe.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from wilton_core.errors import StoreError

__all__ = ["MIGRATIONS_DIR", "Migration", "discover_migrations", "split_sqlite_script"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<dialect>sqlite|postgres))?\.sql$")


@dataclass(slots=True, frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    filename: str


def discover_migrations(directory: Path, dialect: str) -> list[Migration]:
    """The migrations to apply for `dialect`, in version order; a readable StoreError on a clash."""
    if dialect not in ("sqlite", "postgres"):
        raise StoreError(f"unknown store dialect {dialect!r}")
    by_version: dict[int, dict[str | None, Path]] = {}
    names: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if m is None:
            raise StoreError(
                f"migration file {path.name!r} is misnamed: expected NNNN_name.sql, "
                "NNNN_name.sqlite.sql or NNNN_name.postgres.sql (lowercase name, 4-digit version)"
            )
        version = int(m["version"])
        if version in names and names[version] != m["name"]:
            raise StoreError(
                f"two migrations claim version {version:04d}: {names[version]!r} and {m['name']!r}; "
                "each area owns its own version range (see wilton_core/store/migrations.py)"
            )
        names[version] = m["name"]
        by_version.setdefault(version, {})[m["dialect"]] = path
    out: list[Migration] = []
    for version in sorted(by_version):
        files = by_version[version]
        if None in files and len(files) > 1:
            raise StoreError(
                f"migration {version:04d}_{names[version]} has both a portable file and dialect files; keep one form"
            )
        chosen = files.get(None) or files.get(dialect)
        if chosen is None:
            raise StoreError(
                f"migration {version:04d}_{names[version]} has no file for {dialect} "
                f"(expected {version:04d}_{names[version]}.{dialect}.sql)"
            )
        out.append(Migration(version, names[version], chosen.read_text(encoding="utf-8"), chosen.name))
    return out


def split_sqlite_script(sql: str) -> list[str]:
    """Split a script into statements without being fooled by ';' inside strings or triggers.

    sqlite3's executescript() would do this but commits first, which would break the
    all-or-nothing migration transaction.
    """
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            stmt = pending.strip()
            if _has_code(stmt):
                statements.append(stmt)
            pending = ""
    if _has_code(pending):
        raise StoreError(f"migration ends with an unterminated statement: {pending.strip()[:80]!r}")
    return statements


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())
