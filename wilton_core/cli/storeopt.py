"""The store behind a wiltonctl command: which one (`--store-url` or the settings), and opening
it for reading without creating anything.

A flag's bad value is blamed on the flag (`--store-url: ...`), an environment's on the variable
(`WILTON_STORE_URL: ...`, from the settings). Read-only commands open with `create=False`: run
from the wrong directory, they say where they looked instead of creating an empty
`./data/wilton.db` and reporting that nothing happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wilton_core.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from wilton_core.store.sql import SqlStore

__all__ = ["MISSING_STORE_HINT", "check_store_flag", "open_existing_store", "store_url"]

MISSING_STORE_HINT = ("is the stack running from another directory? Pass --store-url, or set "
                      "WILTON_STORE_URL (or WILTON_DATA_DIR) as the stack has it")


def check_store_flag(flag: str | None) -> None:
    """ConfigError naming `--store-url` when the flag's value is not a store URL."""
    if flag is None:
        return
    from wilton_core.store.url import parse_store_url

    try:
        parse_store_url(flag)
    except StoreError as e:
        raise ConfigError(f"--store-url: {e}") from None


def store_url(flag: str | None) -> str:
    """The flag's URL (checked), else the settings' (WILTON_STORE_URL, else the data dir)."""
    check_store_flag(flag)
    if flag is not None:
        return flag
    from wilton_core.settings import load_settings

    return load_settings().resolved_store_url()


def open_existing_store(url: str) -> SqlStore:
    """Open a store that exists; `StoreNotFoundError` (with where it looked) when it does not."""
    from wilton_core.store import StoreNotFoundError, open_store

    try:
        return open_store(url, create=False)
    except StoreNotFoundError as e:
        raise StoreNotFoundError(f"{e}; {MISSING_STORE_HINT}") from None
