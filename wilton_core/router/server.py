"""A minimal HTTP/1.1 server for the router's own face: asyncio protocol + httptools' parser.

uvicorn is general (websockets, h11, proxy headers, a task and two socket writes per response);
the router needs one thing done fast: take a small JSON POST, answer it in ONE write, or relay an
SSE stream with back-pressure. This server drives the same ASGI app (RouterApp) with minimal
message dicts, so every route, error and ledger path is the app's own; only the socket work
changes. What it does:

- keep-alive and pipelining (requests on one connection are answered in order, one at a time);
- request bodies with Content-Length or chunked transfer; the body limit answers 413 from the
  headers alone (Content-Length) or as soon as a chunked body passes it, then closes;
- a chunked request on an idle connection is STREAMED (`_BodyStream`): the app runs from the end
  of the headers and `receive()` hands it each chunk as it arrives (live transcription uploads
  audio as it is recorded and answers while the upload goes on). Reading pauses while more than
  `_STREAM_HIGH` bytes wait unread; the body limit still holds (the app sees a disconnect, the
  client a 413 if no answer started, else the connection closes); the whole-body deadline becomes
  an idle deadline between chunks (`body_timeout_s` of silence cuts the request). A request with
  Content-Length, or one pipelined behind another, is buffered whole exactly as before;
- a buffered response (start + one final body) goes out in a single transport.write; a streamed
  one (more_body=True) is sent with chunked transfer-encoding and waits for a drain when the
  transport pauses writing;
- a client that disconnects mid-stream cancels the request task, which closes the upstream
  stream; the app's relay records it as stream_error/client_disconnected;
- malformed HTTP gets 400 and the connection is closed; so do the request-smuggling shapes
  (Content-Length with Transfer-Encoding, two Content-Lengths, bad chunk sizes: llhttp's strict
  mode refuses them), so one connection never yields two readings of one request;
- limits (`Limits`, from the settings): the request line and headers must arrive within
  `header_timeout_s` and fit `max_header_bytes` and `max_headers` (else 408 / 431, then close);
  the body must arrive within `body_timeout_s` (408); an idle connection is closed after
  `keep_alive_s`; beyond `max_connections` open connections a new one gets 503 and is closed at
  once, so a flood costs the server a write, not a slot;
- a request that asks to upgrade (no upgrades here) is answered over HTTP/1.1 with
  `connection: close`: anything pipelined behind it is refused explicitly, never left unanswered;
- `serve()` stops on SIGTERM/SIGINT: stop accepting, close idle connections, let in-flight
  requests finish (bounded), run the app's lifespan shutdown (RouterService.stop flushes the
  ledger), return.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from wilton_core.router.asgi import ASGIApp, Message
from wilton_core.router.wire import error_body

if TYPE_CHECKING:
    from wilton_core.settings import Settings

__all__ = ["FastServer", "Limits", "limits_from", "serve"]

log = logging.getLogger("wilton.router.server")


_STATUS_LINES: dict[int, bytes] = {}
# a pipelining client may queue this many parsed requests before we stop reading its socket
_MAX_PIPELINE = 16
# streamed output is written at once when this much is waiting (else at the end of the iteration)
_FLUSH_BYTES = 64 * 1024
# a streamed request body: stop reading the socket while this much waits for the app
_STREAM_HIGH = 256 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection may cost the server (docs/reliability.md, "Server limits")."""

    max_header_bytes: int = 16384
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0  # a buffered body, whole; a streamed one, the silence between chunks
    keep_alive_s: float = 5.0
    max_connections: int = 1000


def limits_from(settings: Settings) -> Limits:
    return Limits(max_header_bytes=settings.router_max_header_bytes, max_headers=settings.router_max_headers,
                  header_timeout_s=settings.router_header_timeout_s, body_timeout_s=settings.router_body_timeout_s,
                  keep_alive_s=settings.router_keep_alive_s, max_connections=settings.router_max_connections)


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        line = b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("ascii"))
        _STATUS_LINES[status] = line
    return line


class _Date:
    """The Date header, formatted once a second rather than once a response."""

    __slots__ = ("_at", "_line")

    def __init__(self) -> None:
        self._at = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._at:
            self._at = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._line


class _Request:
    __slots__ = ("body", "chunks", "headers", "keep_alive", "method", "path", "query", "stream", "url", "version")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.body = b""
        self.method = "GET"
        self.path = "/"
        self.query = b""
        self.version = "1.1"
        self.keep_alive = True
        self.stream: _BodyStream | None = None  # set when the body is handed to the app as it arrives


class _BodyStream:
    """A request body the app reads while it arrives: chunks not yet read, and how it ended."""

    __slots__ = ("chunks", "complete", "cycle", "failed", "paused", "ready", "unread")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.unread = 0
        self.complete = False  # the last chunk arrived
        self.failed = False  # cut (limit, deadline, malformed framing) or the client left
        self.paused = False  # this stream paused the socket's reading (flow control)
        self.ready = asyncio.Event()  # something for the app: a chunk, the end, a failure
        self.cycle: _Cycle | None = None  # the exchange reading it, once its task runs

    def fail(self) -> None:
        self.failed = True
        self.chunks.clear()
        self.unread = 0
        self.ready.set()


class _State:
    """What the server shares with its connections: config, the live set, the shutdown flag."""

    def __init__(self, app: ASGIApp, max_body: int, limits: Limits, server_addr: tuple[str, int]) -> None:
        self.app = app
        self.max_body = max_body
        self.limits = limits
        self.server_addr = server_addr
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self.date = _Date()


class HttpProtocol(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        import httptools

        self.state = state
        self.loop = asyncio.get_running_loop()
        self._new_parser = httptools.HttpRequestParser
        self.parser = httptools.HttpRequestParser(self)
        self._parse_error: type[Exception] = httptools.HttpParserError
        self._upgrade_error: type[Exception] = httptools.HttpParserUpgrade
        self._parse_url = httptools.parse_url
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.req: _Request | None = None
        self.body_size = 0
        self.rejected = False  # a request was refused (413/400): ignore the rest of the input
        self.queue: deque[_Request] = deque()
        self.stream: _BodyStream | None = None  # the streamed body now arriving (its app is running)
        self.task: asyncio.Task[None] | None = None
        self.streaming = False
        self.closed = False
        self.write_paused = False
        self.drain: asyncio.Future[None] | None = None
        self.disconnected = asyncio.Event()
        self.idle: asyncio.TimerHandle | None = None  # the one timer: idle, head or body deadline
        self.in_head = True  # bytes now received belong to a request line or headers
        self.head_bytes = 0
        self.header_count = 0
        self.head_len = 0
        self.reading_paused = False
        self.out: list[bytes] = []  # streamed chunks waiting for the end of the loop iteration
        self.out_size = 0
        self.flush_pending = False

    # ---- transport callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses
        peer = transport.get_extra_info("peername")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None
        if len(self.state.connections) >= self.state.limits.max_connections:
            # full: refuse at once rather than hold a socket the server will not serve soon
            self.rejected = True
            self._write_raw(503, error_body("The router has too many open connections; retry shortly.",
                                            "service_unavailable", None, "too_many_connections"))
            self._close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.state.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        self.disconnected.set()
        if self.idle is not None:
            self.idle.cancel()
        if self.stream is not None:  # the app reading the upload sees the disconnect
            self.stream.fail()
            self.stream = None
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)
        # a stream nobody reads any more must stop pulling from the upstream; a buffered answer
        # runs to the end so its outcome is recorded exactly as if the client had waited
        if self.task is not None and self.streaming and not self.task.done():
            self.task.cancel()

    def buffer(self, data: bytes) -> None:
        if not data:
            return
        self.out.append(data)
        self.out_size += len(data)
        if self.out_size >= _FLUSH_BYTES:
            self.flush()
        elif not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self, last: bytes = b"") -> None:
        self.flush_pending = False
        if last:
            self.out.append(last)
        if not self.out:
            return
        data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
        self.out.clear()
        self.out_size = 0
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.rejected:
            return
        if self.in_head:
            self.head_bytes += len(data)
        while True:
            try:
                self.parser.feed_data(data)
            except self._upgrade_error as e:
                if self.req is not None:  # a request still arriving asked to switch: answer it, then close
                    self.req.keep_alive = False
                    self.on_message_complete(force=True)
                    self.rejected = True
                    return
                # No upgrades here: the request was answered over plain HTTP/1.1, so the bytes
                # after it are the client's next request: read them with a fresh parser.
                offset = e.args[0] if e.args and isinstance(e.args[0], int) else len(data)
                self.parser = self._new_parser(self)
                data = data[offset:]
                if data and not self.rejected:
                    continue
                return
            except self._parse_error as e:
                if not self.rejected:
                    self._reject(400, f"Malformed HTTP request: {e}.", "bad_request")
                return
            break
        if self.in_head and self.head_bytes > self.state.limits.max_header_bytes and not self.rejected:
            self._reject(431, f"Request line and headers exceed {self.state.limits.max_header_bytes} bytes.",
                         "headers_too_large")

    # ---- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.req = _Request()
        self.body_size = 0
        self.header_count = 0
        self.head_len = 0
        # from its first byte, the head has `header_timeout_s` to arrive whole
        self._arm(self.state.limits.header_timeout_s, self._slow_request)

    def on_url(self, url: bytes) -> None:
        if self.req is not None:
            self.req.url += url
            self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.req is None:
            return
        self.header_count += 1
        if self.header_count > self.state.limits.max_headers:
            self._reject(431, f"More than {self.state.limits.max_headers} request headers.", "too_many_headers")
            return
        self.req.headers.append((name.lower(), value))
        self._count_head(len(name) + len(value) + 4)

    def _count_head(self, n: int) -> None:
        # a whole head that arrived in one read is measured here; one still arriving, in data_received
        self.head_len += n
        if self.head_len > self.state.limits.max_header_bytes:
            self._reject(431, f"Request line and headers exceed {self.state.limits.max_header_bytes} bytes.",
                         "headers_too_large")

    def on_headers_complete(self) -> None:
        req = self.req
        if req is None:
            return
        self.in_head = False
        self.head_bytes = 0
        self._arm(self.state.limits.body_timeout_s, self._slow_request)
        p = self.parser
        req.method = p.get_method().decode("ascii", "replace")
        req.version = p.get_http_version()
        req.keep_alive = p.should_keep_alive()
        url = req.url
        if b"?" in url or b"%" in url or not url.startswith(b"/"):
            parsed = self._parse_url(url)
            path = parsed.path or b"/"
            req.query = parsed.query or b""
        else:
            path = url
        req.path = path.decode("latin-1")
        limit = self.state.max_body
        expect_continue = False
        chunked = False
        for k, v in req.headers:
            if k == b"content-length":
                with contextlib.suppress(ValueError):
                    if int(v) > limit:
                        self._reject_too_large()
                        return
            elif k == b"expect" and v.lower() == b"100-continue":
                expect_continue = True
            elif k == b"transfer-encoding":
                chunked = b"chunked" in v.lower()
        if expect_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked and self.task is None and not self.queue and not p.should_upgrade():
            # idle connection, chunked upload: the app runs now and reads the body as it arrives
            stream = _BodyStream()
            req.stream = stream
            self.stream = stream
            self.queue.append(req)
            self._next()

    def on_body(self, body: bytes) -> None:
        if self.rejected:
            return
        req = self.req
        assert req is not None
        self.body_size += len(body)
        if self.body_size > self.state.max_body:
            self._reject_too_large()
            return
        stream = self.stream
        if stream is None:
            req.chunks.append(body)
            return
        if self.task is None:
            # the app answered without reading the whole upload: the rest is read and dropped, so
            # the connection can carry the next request (the limit and the idle deadline still hold)
            self._arm(self.state.limits.body_timeout_s, self._slow_request)
            return
        stream.chunks.append(body)
        stream.unread += len(body)
        stream.ready.set()
        if stream.unread > _STREAM_HIGH:
            # the app is behind: stop reading; the client waits on TCP, and is not timed meanwhile
            # (the rest of the bytes already read are still parsed into the stream)
            if not self.reading_paused and self.transport is not None:
                stream.paused = True
                self.reading_paused = True
                self.transport.pause_reading()
            if self.idle is not None:
                self.idle.cancel()
                self.idle = None
        else:
            self._arm(self.state.limits.body_timeout_s, self._slow_request)

    def resume_stream(self, stream: _BodyStream) -> None:
        """The app read what was waiting: read the socket again, and time the client again."""
        stream.paused = False
        if self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()
        if self.stream is stream:
            self._arm(self.state.limits.body_timeout_s, self._slow_request)

    def on_message_complete(self, force: bool = False) -> None:
        req = self.req
        if req is None or (self.rejected and not force):
            return
        self.req = None
        self.in_head = True
        if self.idle is not None:  # the request is whole: the app's time is not the client's
            self.idle.cancel()
            self.idle = None
        stream = req.stream
        if stream is not None:  # its app is already running: tell it the upload ended
            stream.complete = True
            stream.ready.set()
            self.stream = None
            if self.task is None:  # ... or it already answered: the connection is free again
                self._next()
            return
        chunks = req.chunks
        req.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        req.chunks = []
        self.queue.append(req)
        if self.task is None:
            self._next()
        elif len(self.queue) >= _MAX_PIPELINE and self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    # ---- request cycle ------------------------------------------------------------------------

    def _next(self) -> None:
        if not self.queue:
            self.task = None
            if self.reading_paused and self.transport is not None and not self.closed:
                self.reading_paused = False
                self.transport.resume_reading()
            if self.state.closing:
                self._close()
            elif self.req is None:  # (a request still arriving keeps its own deadline)
                self._arm_idle()
            return
        req = self.queue.popleft()
        coro = _reject_cycle(self, req) if req.method == "__reject__" else self._run(req)
        task = self.loop.create_task(coro)
        self.task = task
        self.state.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.state.tasks.discard(task)
        if self.task is task:
            self.task = None
        self.streaming = False
        if self.closed:
            self.queue.clear()
            return
        stream = self.stream
        if stream is not None:  # answered before the upload ended: drop what is unread, keep timing
            stream.chunks.clear()
            stream.unread = 0
            stream.paused = False
            self._arm(self.state.limits.body_timeout_s, self._slow_request)
        self._next()

    async def _run(self, req: _Request) -> None:
        if req.stream is None:
            cycle = _Cycle(self, req)
        else:
            cycle = _StreamCycle(self, req)
            req.stream.cycle = cycle
        try:
            await self.state.app(cycle.scope(), cycle.receive, cycle.send)
        except asyncio.CancelledError:
            if not self.closed:
                self._close()
            return
        except Exception:
            log.exception("unhandled error in the router app")
            if not cycle.started:
                cycle.write_error(500, "Internal error in the router; see its log.", "server_error", "internal_error")
            self._close()
            return
        if not cycle.finished:
            if not cycle.started:
                cycle.write_error(500, "The router app returned no response.", "server_error", "internal_error")
            self._close()
            return
        if not cycle.keep_alive:
            self._close()

    # ---- helpers ------------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = self.loop.call_later(delay, callback)

    def _arm_idle(self) -> None:
        self._arm(self.state.limits.keep_alive_s, self._idle_timeout)

    def _idle_timeout(self) -> None:
        self.idle = None
        if self.task is None and not self.queue and self.req is None:
            self._close()

    def _slow_request(self) -> None:
        """A request's head or body did not arrive in time: 408 (after any answers owed), close."""
        self.idle = None
        if self.req is None or self.rejected or self.closed:
            return
        if self.stream is not None:
            self._reject(408, f"No request body chunk arrived for {self.state.limits.body_timeout_s:g} s.",
                         "request_timeout")
            return
        part = "body" if not self.in_head else "line and headers"
        limit = self.state.limits.body_timeout_s if not self.in_head else self.state.limits.header_timeout_s
        self._reject(408, f"The request {part} did not arrive within {limit:g} s.", "request_timeout")

    def close_if_idle(self) -> None:
        if self.task is None and not self.queue:
            self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def _reject(self, status: int, message: str, code: str) -> None:
        """Answer an unreadable request at once and close (requests queued before it still run)."""
        self.rejected = True
        self.req = None
        body = error_body(message, "invalid_request_error", None, code)
        stream = self.stream
        if stream is not None:
            # a streamed body is cut: its app sees a disconnect; the client gets the refusal if
            # no answer has started (else a half-sent answer cannot be followed by another)
            self.stream = None
            stream.fail()
            cycle = stream.cycle
            if cycle is None or not cycle.head_sent:
                self._write_raw(status, body)  # (what the app sends after this meets a closed connection)
            self._close()
            return
        if self.task is None and not self.queue:
            self._write_raw(status, body)
            self._close()
        else:
            # answers must stay in order: queue the refusal behind the requests already parsed
            refusal = _Request()
            refusal.method = "__reject__"
            refusal.body = body
            refusal.path = str(status)
            refusal.keep_alive = False
            self.queue.append(refusal)

    def _reject_too_large(self) -> None:
        limit = self.state.max_body
        self._reject(413, f"Request body exceeds the limit of {limit} bytes.", "request_too_large")

    def _write_raw(self, status: int, body: bytes) -> None:
        if self.transport is None or self.closed:
            return
        self.transport.write(b"".join((
            _status_line(status), self.state.date.line(),
            b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n", body)))


class _Cycle:
    """One request/response exchange: the ASGI receive/send pair over the connection."""

    __slots__ = ("body_sent", "chunked", "conn", "finished", "head", "head_sent", "keep_alive", "req", "started",
                 "status")

    def __init__(self, conn: HttpProtocol, req: _Request) -> None:
        self.conn = conn
        self.req = req
        self.keep_alive = req.keep_alive and not conn.state.closing
        self.started = False
        self.finished = False
        self.chunked = False
        self.status = 200
        self.head: list[tuple[bytes, bytes]] = []
        self.body_sent = False
        self.head_sent = False

    def scope(self) -> dict[str, Any]:
        req = self.req
        return {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.version, "method": req.method, "scheme": "http",
            "path": req.path, "raw_path": req.path.encode("latin-1"), "query_string": req.query,
            "root_path": "", "headers": req.headers, "client": self.conn.client,
            "server": self.conn.state.server_addr,
        }

    async def receive(self) -> Message:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.req.body, "more_body": False}
        await self.conn.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("response already started")
            self.started = True
            self.status = int(message["status"])
            self.head = list(message.get("headers") or ())
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if not self.started or self.finished:
            raise RuntimeError("response body out of order")
        conn = self.conn
        body = message.get("body", b"")
        more = bool(message.get("more_body"))
        if self.req.method == "HEAD":
            body = b""
        if not more:
            self.finished = True
            conn.streaming = False
        if not self.head_sent:
            # first body message: the head goes out with it, in the same write
            self.head_sent = True
            head = self._head(streamed=more, length=len(message.get("body", b"")))
            if not more:
                if not conn.closed:
                    assert conn.transport is not None
                    conn.transport.write(head + body if body else head)
                return
            conn.streaming = True
            out = head + self._frame(body)
        elif more:
            out = self._frame(body)
        else:
            out = self._frame(body) + (b"0\r\n\r\n" if self.chunked and self.req.method != "HEAD" else b"")
            if not self.chunked:
                self.keep_alive = False  # an unchunked stream ends when the connection does
        if conn.closed:
            if more:
                raise asyncio.CancelledError  # nobody is reading: stop producing
            return
        if more:
            # Events the relay produces without waiting (several arrived in one upstream read)
            # leave in one write, at the end of this loop iteration: a syscall per SSE event
            # was most of a stream's cost. Nothing waits longer than the app's next await.
            conn.buffer(out)
        else:
            conn.flush(out)
        if more and conn.write_paused:
            conn.drain = conn.loop.create_future()
            await conn.drain
            conn.drain = None
            if conn.closed:
                raise asyncio.CancelledError

    def _frame(self, body: bytes) -> bytes:
        if not self.chunked or not body or self.req.method == "HEAD":
            return b"" if self.req.method == "HEAD" else body
        return b"%x\r\n%s\r\n" % (len(body), body)

    def _head(self, *, streamed: bool, length: int = 0) -> bytes:
        parts = [_status_line(self.status), self.conn.state.date.line()]
        has_length = False
        for k, v in self.head:
            lk = k.lower()
            if lk == b"content-length":
                has_length = True
            elif lk == b"connection":
                if v.lower() == b"close":
                    self.keep_alive = False
                continue
            parts += (k, b": ", v, b"\r\n")
        if not has_length and not streamed:
            parts += (b"content-length: ", str(length).encode(), b"\r\n")
        elif not has_length:
            if self.req.version == "1.1":
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False
        if self.conn.state.closing or not self.req.keep_alive:
            self.keep_alive = False  # shutting down (or told to close): this answer is the connection's last
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def write_error(self, status: int, message: str, type_: str, code: str) -> None:
        self.conn._write_raw(status, error_body(message, type_, None, code))
        self.finished = True


class _StreamCycle(_Cycle):
    """An exchange whose request body is handed to the app chunk by chunk as it arrives."""

    __slots__ = ()

    async def receive(self) -> Message:
        stream = self.req.stream
        assert stream is not None
        conn = self.conn
        while True:
            if stream.chunks:
                chunks = stream.chunks
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                stream.unread = 0
                if stream.paused:
                    conn.resume_stream(stream)
                self.body_sent = stream.complete
                return {"type": "http.request", "body": data, "more_body": not stream.complete}
            if stream.failed or conn.closed:
                return {"type": "http.disconnect"}
            if stream.complete:
                if not self.body_sent:
                    self.body_sent = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                await conn.disconnected.wait()
                return {"type": "http.disconnect"}
            stream.ready.clear()
            await stream.ready.wait()


async def _reject_cycle(conn: HttpProtocol, req: _Request) -> None:
    conn._write_raw(int(req.path), req.body)
    conn._close()


class _Lifespan:
    """Drive the app's ASGI lifespan: startup before listening, shutdown after the drain."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        return await self.inbox.get()

    async def _send(self, message: Message) -> None:
        await self.outbox.put(message)

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.ensure_future(self.app(scope, self._receive, self._send))
        await self.inbox.put({"type": "lifespan.startup"})
        msg = await self._reply()
        if msg["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"router startup failed: {msg.get('message', msg['type'])}")

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self._reply()
        with contextlib.suppress(Exception):
            await self.task

    async def _reply(self) -> Message:
        assert self.task is not None
        got = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait({got, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if got.done():
            return got.result()
        got.cancel()
        exc = self.task.exception()
        raise RuntimeError(f"router lifespan ended early: {exc!r}")


class FastServer:
    """Serve an ASGI app (RouterApp) on host:port. `start()` binds and runs startup; `stop()` drains.

    `port=0` binds a free port; read `.port` after `start()`.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8080, max_body_bytes: int = 4 << 20,
                 limits: Limits = Limits(), graceful_timeout_s: float = 10.0, backlog: int = 2048,
                 lifespan: bool = True, reuse_port: bool = False, freeze_heap: bool = False) -> None:
        self.app = app
        self.reuse_port = reuse_port  # several worker processes on one port (router/workers.py)
        self.freeze_heap = freeze_heap
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self.graceful_timeout_s = graceful_timeout_s
        self.backlog = backlog
        self.lifespan = _Lifespan(app) if lifespan else None
        self._server: asyncio.Server | None = None
        self._state: _State | None = None
        self._exit = asyncio.Event()
        self.started = False

    async def start(self) -> None:
        if self.lifespan is not None:
            await self.lifespan.startup()
        state = _State(self.app, self.max_body_bytes, self.limits, (self.host, self.port))
        self._state = state
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: HttpProtocol(state), self.host, self.port,
                                                backlog=self.backlog, reuse_address=True,
                                                reuse_port=self.reuse_port or None)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        state.server_addr = (self.host, self.port)
        self.started = True
        if self.freeze_heap:
            # What startup loaded (config, the difficulty model, imports: ~70k container objects)
            # lives as long as the process: out of the collector's generations, the full
            # collections that request traffic triggers no longer rescan it. Refcounting still
            # frees any of it. Only for a server that owns its process (`serve`), not in tests.
            gc.collect()
            gc.freeze()
        log.info("router listening on http://%s:%d (fast server)", self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, close idle connections, finish in-flight requests, run lifespan shutdown."""
        state = self._state
        if self._server is not None:
            self._server.close()
        if state is not None:
            state.closing = True
            for conn in list(state.connections):
                conn.close_if_idle()
            if state.tasks:
                _, pending = await asyncio.wait(set(state.tasks), timeout=self.graceful_timeout_s)
                for t in pending:
                    t.cancel()
                if pending:
                    log.warning("%d requests still running after %.0f s; cancelled", len(pending),
                                self.graceful_timeout_s)
                    await asyncio.wait(pending, timeout=2.0)
            for conn in list(state.connections):
                conn._close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    async def serve(self, *, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or `request_exit()`), then shut down gracefully."""
        loop = asyncio.get_running_loop()
        installed = []
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._exit.set)
                    installed.append(sig)
        try:
            await self.start()
            await self._exit.wait()
            log.info("router shutting down")
        finally:
            try:
                await self.stop()
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)

    def request_exit(self) -> None:
        self._exit.set()


def serve(app: ASGIApp, *, host: str, port: int, max_body_bytes: int, limits: Limits = Limits(),
          use_uvloop: bool = True, reuse_port: bool = False) -> bool:
    """Run the fast server in this thread until a signal; True when it started."""
    server = FastServer(app, host=host, port=port, max_body_bytes=max_body_bytes, limits=limits,
                        reuse_port=reuse_port, freeze_heap=True)
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            use_uvloop = False
    if use_uvloop:
        uvloop.run(server.serve())
    else:
        asyncio.run(server.serve())
    return server.started
