"""How far an upstream is trusted: reply size, size of one stream event, total duration, stream idleness.

An upstream is a peer we do not control: a 400 MB body once took the router to 1.5 GB, and SSE
comment keep-alives (`: ping`) held a stream open 25 s with `timeout_s = 2`, because the read
timeout restarts on every byte. Here the limits are enforced where the bytes arrive:

- `ByteBudget` counts a reply's bytes as they are read (httpx through a response hook, the lean
  http1 client in its socket callback) and fails the read as soon as the total, or one line of a
  stream, goes over its cap, so memory stays bounded and the connection is dropped;
- `Deadline` bounds a whole call (`max_duration_s`, streams included) and, for streams, the gap
  between two *data* events (`stream_idle_timeout_s`): comments and blank keep-alives never
  reach the provider's event loop, so they do not reset it.

Both raise `UnavailableError` subclasses (`ResponseTooLargeError`, `UpstreamTimeoutError`):
these are upstream failures and count against the model's health.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from wilton_core.aio import within
from wilton_core.config import ModelConfig, RoutingConfig
from wilton_core.errors import ResponseTooLargeError, UpstreamTimeoutError

__all__ = [
    "ByteBudget",
    "Deadline",
    "UpstreamLimits",
    "is_stream_content_type",
    "limit_response_hook",
]

T = TypeVar("T")

_ROUTING_DEFAULTS = RoutingConfig()


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    max_response_bytes: int
    max_event_bytes: int
    max_duration_s: float
    stream_idle_timeout_s: float

    @classmethod
    def of(cls, model: ModelConfig, routing: RoutingConfig | None = None) -> UpstreamLimits:
        """The model's own keys, else [routing]'s (else its defaults); idle defaults to timeout_s."""
        r = routing or _ROUTING_DEFAULTS
        return cls(
            max_response_bytes=model.max_response_bytes or r.max_response_bytes,
            max_event_bytes=model.max_event_bytes or r.max_event_bytes,
            max_duration_s=model.max_duration_s or r.max_duration_s,
            stream_idle_timeout_s=model.stream_idle_timeout_s or model.timeout_s,
        )


def is_stream_content_type(content_type: str) -> bool:
    """SSE and NDJSON replies: line-delimited, so one line (event) has its own cap."""
    ct = content_type.lower()
    return "event-stream" in ct or "ndjson" in ct or "jsonl" in ct


class ByteBudget:
    """Counts one reply's bytes; `feed` raises ResponseTooLargeError past the total or line cap.

    `max_line` applies to line-delimited replies only (None for a JSON body, which may be one
    long line): the bytes since the last newline are what a line decoder would hold in memory.
    """

    __slots__ = ("line", "max_line", "max_total", "total", "what")

    def __init__(self, max_total: int, max_line: int | None, what: str) -> None:
        self.max_total = max_total
        self.max_line = max_line
        self.what = what
        self.total = 0
        self.line = 0

    def feed(self, chunk: bytes) -> None:
        n = len(chunk)
        self.total += n
        if self.total > self.max_total:
            raise ResponseTooLargeError(f"{self.what}: reply larger than max_response_bytes={self.max_total}; "
                                        "connection dropped")
        if self.max_line is not None:
            # the line carried over from earlier chunks ends at the first newline, and the one
            # left open starts after the last (a line wholly inside one read is at most a read)
            first = chunk.find(b"\n")
            if first < 0:
                self.line += n
            else:
                if self.line + first > self.max_line:
                    self.line += first
                else:
                    self.line = n - chunk.rfind(b"\n") - 1
            if self.line > self.max_line:
                raise ResponseTooLargeError(f"{self.what}: one stream event larger than "
                                            f"max_event_bytes={self.max_line}; connection dropped")


class _LimitedStream(httpx.AsyncByteStream):
    """A response body stream that stops (and so drops the connection) when its budget runs out."""

    def __init__(self, inner: httpx.AsyncByteStream, budget: ByteBudget) -> None:
        self._inner = inner
        self._budget = budget

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._budget.feed(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def limit_response_hook(limits: UpstreamLimits, what: str) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx `response` event hook capping every reply's size.

    A hook rather than a transport wrapper: it runs for every transport the client picks
    (including the proxy transports httpx mounts from the environment) and for the replies the
    Gemini SDK reads itself. It runs before the body is read, so a too-large Content-Length
    fails without reading a byte.
    """

    async def hook(response: httpx.Response) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_response_bytes:
            await response.aclose()
            raise ResponseTooLargeError(f"{what}: reply of {declared} bytes is larger than max_response_bytes="
                                        f"{limits.max_response_bytes}; not read")
        stream = response.stream
        if isinstance(stream, httpx.AsyncByteStream):
            line = limits.max_event_bytes if is_stream_content_type(response.headers.get("content-type", "")) \
                else None
            response.stream = _LimitedStream(stream, ByteBudget(limits.max_response_bytes, line, what))

    return hook


class Deadline:
    """The overall deadline of one upstream call, and the idle limit between a stream's data events.

    Times are the running event loop's clock, the one `asyncio.timeout_at` uses.
    """

    __slots__ = ("at", "limits", "what")

    def __init__(self, limits: UpstreamLimits, what: str) -> None:
        self.limits = limits
        self.what = what
        self.at = asyncio.get_running_loop().time() + limits.max_duration_s

    def _expired(self, idle: bool) -> UpstreamTimeoutError:
        if idle:
            return UpstreamTimeoutError(f"{self.what}: timed out: no stream data for "
                                        f"stream_idle_timeout_s={self.limits.stream_idle_timeout_s:g}s")
        return UpstreamTimeoutError(f"{self.what}: timed out: the call outran "
                                    f"max_duration_s={self.limits.max_duration_s:g}s")

    async def run(self, aw: Awaitable[T]) -> T:
        """`aw` awaited within what is left of the overall deadline (one timer handle: see aio.within)."""
        try:
            return await within(aw, self.at)
        except TimeoutError:
            raise self._expired(idle=False) from None

    async def events(self, events: AsyncIterator[T]) -> AsyncIterator[T]:
        """`events` re-yielded, each awaited within min(idle limit, what is left of the deadline).

        The idle window opens when we start waiting for the next event, never across a `yield`:
        time the consumer spends with an event is not the upstream's idleness (it still counts
        toward the total). One watchdog timer per stream, re-armed only when it fires early,
        instead of a timeout per event: a stream has hundreds of events and this is the hot path.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        idle = self.limits.stream_idle_timeout_s
        cancelling = task.cancelling()
        opened = 0.0  # when the current wait began
        waiting = False
        fired: UpstreamTimeoutError | None = None
        handle: asyncio.TimerHandle | None = None

        def watchdog() -> None:
            nonlocal handle, fired
            handle = None
            if not waiting:
                return  # the consumer holds an event; the next wait re-arms us
            now = loop.time()
            due = min(opened + idle, self.at)
            if now < due:
                handle = loop.call_at(due, watchdog)
                return
            fired = self._expired(idle=opened + idle <= self.at)
            task.cancel()

        try:
            while True:
                opened = loop.time()
                if opened >= self.at:
                    raise self._expired(idle=False)
                if handle is None:
                    handle = loop.call_at(min(opened + idle, self.at), watchdog)
                waiting = True
                try:
                    item = await anext(events)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    # ours (the watchdog fired) unless someone else cancelled the task too
                    if fired is not None and task.uncancel() <= cancelling:
                        raise fired from None
                    raise
                finally:
                    waiting = False
                yield item
        finally:
            if handle is not None:
                handle.cancel()
