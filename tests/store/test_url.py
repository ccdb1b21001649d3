"""Store URLs, and readable errors (no password, no traceback text) when a store is unreachable."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wilton_core.errors import StoreError
from wilton_core.store import open_store
from wilton_core.store.postgres import translate_placeholders
from wilton_core.store.url import parse_store_url, redact_url


def test_parse_sqlite_paths() -> None:
    assert parse_store_url("sqlite:///data/w.db").dsn == "data/w.db"
    assert parse_store_url("sqlite:////abs/w.db").dsn == "/abs/w.db"
    for bad in ("sqlite://", "sqlite:///:memory:", "sqlite://host/x.db", "mysql://x/y", "data/w.db"):
        with pytest.raises(StoreError):
            parse_store_url(bad)


def test_parse_postgres_and_redaction() -> None:
    t = parse_store_url("postgresql://wilton:s3cr%40t@db:5433/w?sslmode=require")
    assert t.dialect == "postgres"
    assert t.dsn == "postgresql://wilton:s3cr%40t@db:5433/w?sslmode=require"
    assert t.safe_url == "postgresql://wilton:***@db:5433/w?sslmode=require"
    assert parse_store_url("postgres://u@h/d").safe_url == "postgres://u@h/d"
    assert redact_url("postgresql://u:p@[::1]:5432/d") == "postgresql://u:***@[::1]:5432/d"


def test_translate_placeholders() -> None:
    assert translate_placeholders("SELECT a FROM t WHERE a = ? AND b = ?") == "SELECT a FROM t WHERE a = %s AND b = %s"
    assert translate_placeholders("SELECT '?', 'it''s ?', \"q?\" -- why?\n, ?") == (
        "SELECT '?', 'it''s ?', \"q?\" -- why?\n, %s"
    )
    assert translate_placeholders("SELECT '100%' || ? WHERE x LIKE 'a%'") == "SELECT '100%%' || %s WHERE x LIKE 'a%%'"


def test_unwritable_sqlite_path_is_a_readable_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create directory") as info:
        open_store(f"sqlite:///{blocker / 'sub' / 'w.db'}")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_sqlite_creates_parent_dirs(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'w.db'}")
    try:
        assert (tmp_path / "a" / "b" / "w.db").exists()
        assert s.query_one("PRAGMA journal_mode") == ("wal",)
        assert s.query_one("PRAGMA synchronous") == (1,)   # NORMAL
        assert s.query_one("PRAGMA busy_timeout") == (10000,)
    finally:
        s.close()


def test_unreachable_postgres_never_shows_the_password() -> None:
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as info:
        open_store(f"postgresql://wilton:hunter2secret@127.0.0.1:{port}/w", connect_timeout_s=2)
    text = str(info.value)
    assert "hunter2secret" not in text and "***" in text and "cannot connect" in text
    assert info.value.__cause__ is None and info.value.__suppress_context__
