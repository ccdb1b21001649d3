"""Request ids: a client's `x-request-id` is honoured when it is safe to store and echo.

A request id ends up in the ledger, in logs and in a response header: one that is long, or
carries spaces, quotes, newlines or non-ASCII characters, could bloat rows, forge log lines or
break a header. Such an id is not an error (the client asked for tracing, not for a refusal):
the router generates its own, and echoes that one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MAX_REQUEST_ID_LEN", "client_request_id"]

MAX_REQUEST_ID_LEN = 128
_SAFE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,%d}" % (MAX_REQUEST_ID_LEN - 1))


def client_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The client's `x-request-id` when it is 1-128 characters of [A-Za-z0-9._:@/+=-] starting
    with a letter or digit; None when absent or unsafe (the caller then generates one)."""
    for k, v in headers:
        if k == b"x-request-id":
            return v.decode("ascii") if _SAFE.fullmatch(v) else None
    return None
