"""PostgreSQL backend (psycopg 3), for several router replicas on several hosts.

Same schema and same queries as SQLite (see sql.py); only the placeholder style differs
(`?` in, `%s` out) and migrations are serialised with a transaction-scoped advisory lock.
psycopg is imported on first connect, so SQLite-only deployments never load it.
"""

from __future__ import annotations

import functools
from typing import Any

from wilton_core.errors import StoreError
from wilton_core.store.sql import SqlStore
from wilton_core.store.url import redact_url

__all__ = ["PostgresStore", "translate_placeholders"]

# Any fixed 64-bit number; it only has to be the same in every process migrating this database.
_MIGRATION_LOCK_KEY = 0x57696C746F6E4D67  # "WiltonMg"


@functools.lru_cache(maxsize=512)
def translate_placeholders(sql: str) -> str:
    """`?` -> `%s` outside quotes and comments; every literal `%` doubled (psycopg's escape)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # '' or "" escapes the quote
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1].replace("%", "%%"))
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class PostgresStore(SqlStore):
    dialect = "postgres"

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0, **kwargs: Any) -> None:
        super().__init__(redact_url(url), **kwargs)
        self._dsn = url
        self.connect_timeout_s = connect_timeout_s

    def _connect(self) -> Any:
        import psycopg  # lazy: only PostgreSQL deployments pay for it

        try:
            return psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, round(self.connect_timeout_s))
            )
        except psycopg.Error as err:
            raise StoreError(f"postgres store {self.url}: cannot connect: {self._describe(err)}") from None

    def _describe(self, err: BaseException) -> str:
        # libpq messages name host and user, never the password; strip it anyway in case a
        # future driver echoes the conninfo back.
        text = " ".join(str(err).split()) or type(err).__name__
        password = _password(self._dsn)
        return text.replace(password, "***") if password else text

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def _is_broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def _translate(self, sql: str) -> str:
        return translate_placeholders(sql)

    def _begin_read_sql(self) -> str:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def _lock_migrations(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK_KEY,))

    def _run_script(self, sql: str) -> None:
        # Sent verbatim (no parameters), so psycopg neither parses placeholders nor needs `%%`,
        # and PostgreSQL runs the whole multi-statement file inside the migration transaction.
        conn = self._conn()
        with self._errors():
            conn.execute(sql)


def _password(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None
