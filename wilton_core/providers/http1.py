"""A lean pooled HTTP/1.1 keep-alive client for plain-http upstreams, on asyncio protocols + httptools.

Why: the gateway's own cost per request is dominated by its upstream call, and httpx/httpcore
spend ~0.5 ms of CPU per request on a keep-alive pool (anyio streams, a syscall per pooled
connection to check it is still alive, several layers of wrappers). Self-hosted models sit on
plain http on the LAN, which is the hop the router makes most; this client makes it with one
write and one parse. https and proxied upstreams keep using httpx (see `wants_http1`).

It speaks what an OpenAI-compatible upstream needs: one request per connection at a time,
content-length, chunked and read-until-close bodies, streaming with back-pressure, a connect
timeout, a read timeout between bytes (httpx's semantics), a bounded pool that reuses idle
connections (most recent first) and drops those the server closed or that idled past
`keepalive_expiry`, and caps on a reply's size and on one line of a streamed reply (checked in
the socket callback, so a hostile upstream cannot grow our memory: the connection is dropped and
`ResponseTooLargeError` raised). Failures are raised as the httpx exception classes, so
`errors_map.error_from_exception` maps them exactly as it maps httpx's own; responses expose
the subset of `httpx.Response` the providers use (`status_code`, `headers`, `content`,
`aread`, `aiter_bytes`, `aiter_lines`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import httptools
import httpx

from wilton_core.errors import ResponseTooLargeError
from wilton_core.providers.limits import ByteBudget, is_stream_content_type

__all__ = ["Http1Client", "Http1Response", "wants_http1"]


_HIGH_WATER = 256 * 1024  # buffered body bytes before we stop reading the socket (streams)
_NEWLINES = ("\n", "\r")


def wants_http1(base_url: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when `base_url` is plain http and no proxy applies (the cases this client serves)."""
    u = urlsplit(base_url)
    if u.scheme != "http" or not u.hostname:
        return False
    env = getproxies_environment() if environ is None else {
        k.lower().removesuffix("_proxy"): v for k, v in environ.items() if k.lower().endswith("_proxy") and v}
    if not (env.get("http") or env.get("all")):
        return True
    if environ is None:
        return bool(proxy_bypass_environment(u.hostname))
    return bool(proxy_bypass_environment(u.hostname, env))


class _LineDecoder:
    """Text lines split on \\n, \\r\\n or \\r across chunk boundaries (httpx's semantics)."""

    __slots__ = ("buffer", "trailing_cr")

    def __init__(self) -> None:
        self.buffer: list[str] = []
        self.trailing_cr = False

    def decode(self, text: str) -> list[str]:
        if self.trailing_cr:
            text = "\r" + text
            self.trailing_cr = False
        if text.endswith("\r"):
            self.trailing_cr = True
            text = text[:-1]
        if not text:
            return []
        trailing_newline = text[-1] in _NEWLINES
        lines = text.splitlines()
        if len(lines) == 1 and not trailing_newline:
            self.buffer.append(lines[0])
            return []
        if self.buffer:
            lines = ["".join(self.buffer) + lines[0], *lines[1:]]
            self.buffer = []
        if not trailing_newline:
            self.buffer = [lines.pop()]
        return lines

    def flush(self) -> list[str]:
        if not self.buffer and not self.trailing_cr:
            return []
        lines = ["".join(self.buffer)]
        self.buffer = []
        self.trailing_cr = False
        return lines


class _Conn(asyncio.Protocol):
    """One TCP connection; carries at most one request/response at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float, max_body: int | None = None,
                 max_line: int | None = None, label: str = "upstream") -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.max_body = max_body
        self.max_line = max_line
        self.label = label
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None  # the read watchdog (see wait)
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.received_any = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.last_data = 0.0
        self.paused = False
        self.budget: ByteBudget | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        self.last_data = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("upstream tried to upgrade the connection"))
        except httptools.HttpParserError as e:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {e}"))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.disarm()
        if self.error is None and self.headers_done and not self.complete and self._until_close():
            self.complete = True  # a body delimited by the end of the connection has ended
            self._wake()
            return
        if not self.complete and self.error is None:
            what = ("Server disconnected without sending a response." if not self.headers_done
                    else "peer closed connection without sending complete message body")
            self.error = httpx.RemoteProtocolError(what if exc is None else f"{what} ({exc})")
        self._wake()

    def pause_writing(self) -> None:  # request bodies are small and buffered by the transport
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        if self.max_body is not None:
            ctype, declared = "", ""
            for k, v in self.raw_headers:
                lk = k.lower()
                if lk == b"content-type":
                    ctype = v.decode("latin-1")
                elif lk == b"content-length":
                    declared = v.decode("latin-1").strip()
            if declared.isdigit() and int(declared) > self.max_body:
                self._fail(ResponseTooLargeError(
                    f"{self.label}: reply of {declared} bytes is larger than max_response_bytes={self.max_body}; "
                    "not read"))
                return
            self.budget = ByteBudget(self.max_body, self.max_line if is_stream_content_type(ctype) else None,
                                     self.label)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.budget is not None:
            try:
                self.budget.feed(body)
            except ResponseTooLargeError as e:
                self._fail(e)  # drops the connection: the rest is never read
                return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.disarm()
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- helpers ---------------------------------------------------------------------------------

    def _until_close(self) -> bool:
        for k, v in self.raw_headers:
            lk = k.lower()
            if lk == b"content-length" or (lk == b"transfer-encoding" and b"chunked" in v.lower()):
                return False
        return self.status not in (204, 304) and self.status >= 200

    def _fail(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
        self.abort()
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def abort(self) -> None:
        self.closed = True
        self.disarm()
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes) -> None:
        self._reset()
        self.last_data = self.loop.time()
        if self.closed or self.transport is None or self.transport.is_closing():
            # the server closed it between our pool check and now: nothing was sent
            self.error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
            return
        self.transport.write(data)

    async def wait(self) -> None:
        """Wait for the next parser event; ReadTimeout when no byte came for `read_timeout`.

        One watchdog timer per response, re-armed only when it fires early, instead of a timer per
        wait: a stream waits once per chunk and this is its hot path."""
        if self.error is not None:
            raise self.error
        fut = self.loop.create_future()
        self.waiter = fut
        if self.timer is None:
            self.timer = self.loop.call_at(self.last_data + self.read_timeout, self._on_timer)
        try:
            await fut
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error

    def _on_timer(self) -> None:
        self.timer = None
        w = self.waiter
        if w is None or w.done():
            return  # nobody is waiting (the reader holds data): its next wait re-arms
        due = self.last_data + self.read_timeout
        if self.loop.time() < due:  # bytes arrived since the timer was set: wait the rest
            self.timer = self.loop.call_at(due, self._on_timer)
            return
        self._fail(httpx.ReadTimeout(f"no data from the upstream for {self.read_timeout:g}s"))

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def take(self) -> bytes:
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self, now: float, expiry: float) -> bool:
        return not self.closed and now - self.idle_since < expiry


def _headers_of(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in raw:
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


class Http1Response:
    """What the providers read of a response; `content` is set once the body has been read."""

    def __init__(self, client: Http1Client, conn: _Conn) -> None:
        self._client = client
        self._conn: _Conn | None = conn
        self.status_code = conn.status
        self.headers = _headers_of(conn.raw_headers)
        self._content: bytes | None = None

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise httpx.ResponseNotRead()
        return self._content

    async def aread(self) -> bytes:
        if self._content is None:
            parts = [chunk async for chunk in self.aiter_bytes()]
            self._content = b"".join(parts)
        return self._content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            if self._content is not None:
                yield self._content
            return
        while True:
            if conn.chunks:
                yield conn.take()
                continue
            if conn.complete:
                break
            await conn.wait()
        self._release()

    async def aiter_lines(self) -> AsyncIterator[str]:
        dec = _LineDecoder()
        text = _Utf8()
        async for chunk in self.aiter_bytes():
            for line in dec.decode(text.decode(chunk)):
                yield line
        for line in dec.decode(text.flush()) + dec.flush():
            yield line

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._release(conn)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if not conn.complete:
                conn.abort()  # an unread body cannot share the connection with the next request
            self._client._release(conn)


class _Utf8:
    __slots__ = ("_dec",)

    def __init__(self) -> None:
        import codecs

        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(self, data: bytes) -> str:
        return str(self._dec.decode(data))

    def flush(self) -> str:
        return str(self._dec.decode(b"", final=True))


class Http1Client:
    """A pool of keep-alive connections to one `http://host:port` origin."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        max_connections: int = 128,
        keepalive_expiry: float = 30.0,
        pool_timeout_s: float | None = None,
        max_response_bytes: int | None = None,
        max_line_bytes: int | None = None,
        label: str | None = None,
    ) -> None:
        u = urlsplit(base_url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"Http1Client serves http:// origins only, not {base_url!r}")
        self.host = u.hostname
        self.port = u.port or 80
        self._host_header = u.netloc.rpartition("@")[2]
        self.timeout_s = timeout_s
        self.pool_timeout_s = timeout_s if pool_timeout_s is None else pool_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.max_response_bytes = max_response_bytes
        self.max_line_bytes = max_line_bytes
        self.label = label or f"{self.host}:{self.port}"
        self._idle: list[_Conn] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[_Conn | None]] = deque()
        self._closed = False
        self._targets: dict[str, str] = {}

    # -- the httpx.AsyncClient subset the providers use --------------------------------------

    async def post(self, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None) -> Http1Response:
        return await self.request("POST", url, content=content, headers=headers)

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Http1Response:
        return await self.request("GET", url, headers=headers)

    async def request(self, method: str, url: str, *, content: bytes = b"",
                      headers: Mapping[str, str] | None = None) -> Http1Response:
        resp = await self._send(method, url, content, headers)
        try:
            await resp.aread()
        except BaseException:
            await resp.aclose()
            raise
        return resp

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, *, content: bytes = b"",
                     headers: Mapping[str, str] | None = None) -> AsyncIterator[Http1Response]:
        resp = await self._send(method, url, content, headers)
        try:
            yield resp
        finally:
            await resp.aclose()

    async def aclose(self) -> None:
        self._closed = True
        for c in self._idle:
            c.abort()
        self._idle.clear()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_exception(httpx.PoolTimeout("client closed"))

    # -- internals ---------------------------------------------------------------------------------

    def _target(self, url: str) -> str:
        """The request target of `url` (an absolute URL on this origin, or a path), parsed once per
        URL: a provider posts to the same one or two URLs all its life."""
        target = self._targets.get(url)
        if target is not None:
            return target
        if url.startswith("http"):
            u = urlsplit(url)
            if (u.hostname, u.port or 80) != (self.host, self.port):
                raise httpx.UnsupportedProtocol(f"this client serves {self.host}:{self.port} only, not {url}")
            target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        else:
            target = url
        if len(self._targets) < 64:
            self._targets[url] = target
        return target

    def _encode(self, method: str, url: str, content: bytes, headers: Mapping[str, str] | None) -> bytes:
        target = self._target(url)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        for k, v in (headers or {}).items():
            if "\r" in v or "\n" in v or "\r" in k or "\n" in k:
                raise httpx.LocalProtocolError(f"invalid character in header {k!r}")
            lines.append(f"{k}: {v}")
        if content or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(content)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content

    async def _send(self, method: str, url: str, content: bytes,
                    headers: Mapping[str, str] | None) -> Http1Response:
        data = self._encode(method, url, content, headers)
        for retry in (True, False):
            conn, reused = await self._acquire()
            try:
                conn.send(data)
                while not conn.headers_done:
                    await conn.wait()
            except httpx.RemoteProtocolError:
                self._release(conn)
                # a kept-alive connection the server closed as we reused it: nothing was
                # processed (not a byte came back), so one retry on a fresh connection is safe
                if retry and reused and not conn.received_any:
                    continue
                raise
            except BaseException:
                conn.abort()
                self._release(conn)
                raise
            return Http1Response(self, conn)
        raise AssertionError("unreachable")

    async def _acquire(self) -> tuple[_Conn, bool]:
        if self._closed:
            raise httpx.PoolTimeout("client closed")
        now = time.monotonic()
        while self._idle:
            c = self._idle.pop()
            if c.reusable(now, self.keepalive_expiry):
                return c, True
            c.abort()
            self._open -= 1
        if self._open >= self.max_connections:
            got = await self._wait_for_slot()
            if got is not None:
                return got, True
            # a closed connection handed us its slot: open our own (the count already holds it)
        else:
            self._open += 1
        try:
            return await self._connect(), False
        except BaseException:
            self._free_slot()
            raise

    async def _wait_for_slot(self) -> _Conn | None:
        fut: asyncio.Future[_Conn | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout(self.pool_timeout_s):
                return await fut
        except BaseException as e:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # handed a connection or a slot just as we gave up: pass it on, never leak it
                got = fut.result()
                if got is not None:
                    self._release(got)
                else:
                    self._free_slot()
            if isinstance(e, TimeoutError):
                raise httpx.PoolTimeout(
                    f"no free connection to {self.host}:{self.port} in {self.pool_timeout_s:g}s") from None
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _t, conn = await loop.create_connection(
                    lambda: _Conn(loop, self.timeout_s, self.max_response_bytes, self.max_line_bytes, self.label),
                    self.host, self.port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as e:
            raise httpx.ConnectError(f"{e.strerror or e} ({self.host}:{self.port})") from None
        return conn

    def _wake_waiter(self, conn: _Conn | None) -> bool:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(conn)
                return True
        return False

    def _release(self, conn: _Conn) -> None:
        if conn.complete and conn.keep_alive and not conn.closed and not self._closed:
            conn.idle_since = time.monotonic()
            if not self._wake_waiter(conn):
                self._idle.append(conn)
            return
        conn.abort()
        self._free_slot()

    def _free_slot(self) -> None:
        if not self._wake_waiter(None):  # a waiter inherits the slot, else the pool shrinks
            self._open -= 1
