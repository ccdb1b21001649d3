"""Store URLs: which backend a URL names, and a form of it that is safe to log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from wilton_core.errors import StoreError

__all__ = ["StoreTarget", "parse_store_url", "redact_url"]


@dataclass(slots=True, frozen=True)
class StoreTarget:
    dialect: str          # "sqlite" | "postgres"
    dsn: str              # sqlite: a filesystem path; postgres: the URL libpq understands
    safe_url: str         # the URL with any password replaced by "***"


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced, so it can go in logs and error messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable store url>"
    if not password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_store_url(url: str) -> StoreTarget:
    """`sqlite:///rel/path.db`, `sqlite:////abs/path.db`, `postgresql://...` or `postgres://...`."""
    safe = redact_url(url)
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://"):]
        # sqlite:///x.db is relative, sqlite:////x.db absolute (the SQLAlchemy convention).
        if not rest.startswith("/") or len(rest) < 2:
            raise StoreError(f"store url {safe!r}: expected sqlite:///relative/path.db or sqlite:////abs/path.db")
        path = rest[1:].split("?", 1)[0]
        if path in (":memory:", "") or path.startswith("file:"):
            raise StoreError(
                f"store url {safe!r}: an in-memory SQLite store cannot be shared between threads and "
                "processes; use a file path (e.g. under a temporary directory)"
            )
        return StoreTarget("sqlite", str(Path(path)), safe)
    if url.startswith(("postgresql://", "postgres://")):
        return StoreTarget("postgres", url, safe)
    raise StoreError(f"store url {safe!r}: must start with sqlite:/// or postgresql://")
