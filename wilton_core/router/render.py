"""Typed routing results → HTTP: the `x-wilton-*` headers and the chat-completions SSE stream.

The only place those headers and chunk bytes are made (app.py and the endpoints call it); the
service returns data (`router/results.py`) and the in-process API reads that data directly.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from wilton_core.access.caller import Caller
from wilton_core.errors import UnavailableError
from wilton_core.router.results import ChunkStream, RoutingFacts, StreamFailure
from wilton_core.router.wire import sse_event

__all__ = ["DONE", "chat_sse", "routing_headers"]

Headers = list[tuple[bytes, bytes]]

DONE = b"data: [DONE]\n\n"


def routing_headers(facts: RoutingFacts, caller: Caller | None = None) -> Headers:
    """The routing facts as response headers, plus the caller's rate-limit headers.

    Fallback detail ("model:kind,...") goes to admins (or when there are no keys); other keys
    see only how many attempts failed."""
    m = facts.model
    detail = caller is None or caller.admin
    fallbacks = (",".join(facts.fallbacks).encode() or b"0") if detail else str(len(facts.attempts)).encode()
    headers = [
        (b"x-wilton-model", m.id.encode()),
        (b"x-wilton-tier", m.tier.encode()),
        (b"x-wilton-local", b"true" if m.is_local else b"false"),
        (b"x-wilton-fallbacks", fallbacks),
        (b"x-wilton-intent", facts.intent.encode()),
        (b"x-wilton-difficulty", f"{facts.difficulty:.3f}".encode()),
        (b"x-wilton-overhead-ms", f"{facts.overhead_s * 1000:.3f}".encode()),
        (b"x-request-id", facts.request_id.encode()),
    ]
    if caller is not None and caller.headers:
        headers += caller.headers
    return headers


def _error_event(failure: StreamFailure) -> bytes:
    return sse_event({"error": {"message": failure.message, "type": failure.type, "param": None,
                                "code": failure.code}})


async def chat_sse(out: ChunkStream, include_usage: bool) -> AsyncGenerator[bytes, None]:
    """A chat-completions stream as SSE bytes, `data: [DONE]` last (after an error event too).

    The usage chunk goes out only when the client asked (`stream_options.include_usage`); the
    ledger counts it either way. A chunk that does not encode (nested past the encoder's limit, a
    type JSON has no word for) is the upstream's garbage: it is thrown back into the stream, which
    ends it as an upstream failure (recorded, and counted against the model)."""
    chunks = out.chunks
    mid = out.facts.model.id
    try:
        item = await anext(chunks, None)
        while item is not None:
            if isinstance(item, StreamFailure):
                yield _error_event(item)
                break
            if item.get("choices"):
                if not include_usage:
                    item.pop("usage", None)
            elif not include_usage:
                item = await anext(chunks, None)
                continue
            try:
                data = sse_event(item)
            except orjson.JSONEncodeError:
                garbage = UnavailableError(f"{mid}: malformed stream chunk", provider=out.facts.model.provider,
                                           model=mid)
                try:
                    item = await chunks.athrow(garbage)
                except StopAsyncIteration:
                    item = None
                continue
            yield data
            item = await anext(chunks, None)
        yield DONE
    finally:
        await chunks.aclose()
