"""The lean HTTP/1.1 client against a raw asyncio server on 127.0.0.1:0 that writes exact bytes.

Each server handler reads whole requests (head + content-length body) and answers with the bytes
the test chooses, so framing (content-length, chunked, read-until-close), keep-alive reuse,
server-side closes, stalls and garbage are all exercised on a real socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from wilton_core.errors import UnavailableError
from wilton_core.providers.errors_map import error_from_exception
from wilton_core.providers.http1 import Http1Client, _LineDecoder, wants_http1

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body), extra, body)


def serve_forever(reply: Callable[[bytes], bytes]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server) -> None:
        while (req := await srv.read_request(reader)) is not None:
            writer.write(reply(req))
            await writer.drain()

    return handler


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., Http1Client]]:
    made: list[Http1Client] = []

    def make(url: str, **kw: float) -> Http1Client:
        c = Http1Client(url, timeout_s=kw.pop("timeout_s", 2.0), connect_timeout_s=1.0, **kw)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


async def test_content_length_body_and_request_on_the_wire(client_factory) -> None:
    async with Server(serve_forever(lambda _r: ok(b'{"a":1}', b"x-thing: 1\r\nX-Thing: 2\r\n"))) as srv:
        c = client_factory(srv.url + "/v1")
        r = await c.post(srv.url + "/v1/chat/completions", content=b'{"q":true}',
                         headers={"content-type": "application/json", "authorization": "Bearer k"})
        assert r.status_code == 200
        assert r.content == b'{"a":1}'
        assert r.headers["x-thing"] == "1, 2"  # names lowercased, repeats joined as httpx does
        sent = srv.requests[0]
        assert sent.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{srv.port}\r\n".encode() in sent
        assert b"Content-Length: 10\r\n" in sent and sent.endswith(b'\r\n\r\n{"q":true}')


async def test_keep_alive_reuses_one_connection(client_factory) -> None:
    async with Server(serve_forever(lambda _r: ok(b"{}"))) as srv:
        c = client_factory(srv.url)
        for _ in range(5):
            assert (await c.get("/x")).content == b"{}"
        assert srv.connections == 1 and len(srv.requests) == 5


async def test_chunked_body_split_across_writes(client_factory) -> None:
    async def handler(reader, writer, srv):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"lo\r\n6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        await srv.read_request(reader)  # keep the connection open: the client decides reuse

    async with Server(handler) as srv:
        r = await client_factory(srv.url).get("/")
        assert r.content == b"hello world"


async def test_body_delimited_by_close(client_factory) -> None:
    async def handler(reader, writer, srv):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{\"until\":")
        await writer.drain()
        writer.write(b'"close"}')
        await writer.drain()

    async with Server(handler) as srv:
        c = client_factory(srv.url)
        assert (await c.get("/")).content == b'{"until":"close"}'
        assert (await c.get("/")).content == b'{"until":"close"}'  # a fresh connection the second time
        assert srv.connections == 2


async def test_server_closing_an_idle_connection_is_retried_on_a_fresh_one(client_factory) -> None:
    async def handler(reader, writer, srv):
        await srv.read_request(reader)
        writer.write(ok(b"{}"))  # keep-alive reply, then the server drops the connection anyway
        await writer.drain()

    async with Server(handler) as srv:
        c = client_factory(srv.url)
        assert (await c.get("/")).content == b"{}"
        await asyncio.sleep(0.05)
        assert (await c.get("/")).content == b"{}"
        assert srv.connections == 2


async def test_reset_mid_reply_is_a_broken_connection(client_factory) -> None:
    async def handler(reader, writer, srv):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial")
        await writer.drain()

    async with Server(handler) as srv:
        with pytest.raises(httpx.RemoteProtocolError) as ei:
            await client_factory(srv.url).get("/")
        err = error_from_exception(ei.value, provider="openai", model="m")
        assert isinstance(err, UnavailableError) and "connection broken" in err.message


async def test_no_reply_then_close_is_a_broken_connection_not_retried_on_a_new_connection(client_factory) -> None:
    async def handler(reader, writer, srv):
        await srv.read_request(reader)

    async with Server(handler) as srv:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client_factory(srv.url).get("/")
        assert srv.connections == 1


async def test_garbage_is_a_protocol_error(client_factory) -> None:
    async with Server(serve_forever(lambda _r: b"SSH-2.0-OpenSSH_9\r\n\r\n")) as srv:
        with pytest.raises(httpx.RemoteProtocolError):
            await client_factory(srv.url).get("/")


async def test_read_timeout_between_bytes(client_factory) -> None:
    async def handler(reader, writer, srv):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(4):  # bytes keep coming faster than the timeout: no timeout yet
            await asyncio.sleep(0.06)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
        await asyncio.sleep(5)

    async with Server(handler) as srv:
        c = client_factory(srv.url, timeout_s=0.15)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/")
        took = loop.time() - t0
        assert 0.3 < took < 2.0  # 4 x 60 ms of trickle, then 150 ms of silence
        err = error_from_exception(httpx.ReadTimeout("x"), provider="openai", model="m")
        assert "timed out" in err.message


async def test_connection_refused_maps_like_httpx(client_factory) -> None:
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    with pytest.raises(httpx.ConnectError) as ei:
        await client_factory(f"http://127.0.0.1:{port}").get("/")
    assert "connection failed" in error_from_exception(ei.value, provider="openai", model="m").message


async def test_pool_bound_queues_requests(client_factory) -> None:
    in_flight = [0]
    peak = [0]

    async def handler(reader, writer, srv):
        while await srv.read_request(reader) is not None:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            await asyncio.sleep(0.02)
            in_flight[0] -= 1
            writer.write(ok(b"{}"))
            await writer.drain()

    async with Server(handler) as srv:
        c = client_factory(srv.url, max_connections=2)
        rs = await asyncio.gather(*(c.get("/") for _ in range(6)))
        assert all(r.status_code == 200 for r in rs)
        assert srv.connections == 2 and peak[0] == 2


async def test_pool_timeout_when_every_connection_stays_busy(client_factory) -> None:
    async def handler(reader, writer, srv):
        await srv.read_request(reader)
        await asyncio.sleep(5)

    async with Server(handler) as srv:
        c = client_factory(srv.url, max_connections=1, timeout_s=0.5, pool_timeout_s=0.1)
        first = asyncio.ensure_future(c.get("/"))
        await asyncio.sleep(0.02)
        with pytest.raises(httpx.PoolTimeout):
            await c.get("/")
        with pytest.raises(httpx.ReadTimeout):
            await first
        assert "timed out" in error_from_exception(httpx.PoolTimeout("x"), provider="openai", model="m").message


async def test_cancelled_request_frees_its_slot(client_factory) -> None:
    async def handler(reader, writer, srv):
        while (req := await srv.read_request(reader)) is not None:
            if b"/slow" in req:
                await asyncio.sleep(5)
            writer.write(ok(b"{}"))
            await writer.drain()

    async with Server(handler) as srv:
        c = client_factory(srv.url, max_connections=1)
        slow = asyncio.ensure_future(c.get("/slow"))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert (await c.get("/fast")).content == b"{}"  # the aborted connection gave its slot back


async def test_streamed_sse_lines_across_chunk_boundaries(client_factory) -> None:
    frames = [b'data: {"a":', b'1}\r\n\r\ndata: {"b":2}\n', b"\ndata: [DONE]\n\n"]

    async def handler(reader, writer, srv):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for f in frames:
            writer.write(b"%x\r\n%s\r\n" % (len(f), f))
            await writer.drain()
            await asyncio.sleep(0.005)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        if await srv.read_request(reader) is not None:
            writer.write(ok(b"{}"))
            await writer.drain()

    async with Server(handler) as srv:
        c = client_factory(srv.url)
        async with c.stream("POST", "/s", content=b"{}") as resp:
            assert resp.status_code == 200
            lines = [line async for line in resp.aiter_lines()]
        assert lines == ['data: {"a":1}', "", 'data: {"b":2}', "", "data: [DONE]", ""]
        assert (await c.get("/")).status_code == 200  # the fully read stream's connection is reused
        assert srv.connections == 1


async def test_leaving_a_stream_early_drops_the_connection(client_factory) -> None:
    async def handler(reader, writer, srv):
        while await srv.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()

    async with Server(handler) as srv:
        c = client_factory(srv.url)
        async with c.stream("POST", "/s", content=b"{}") as resp:
            async for chunk in resp.aiter_bytes():
                assert chunk == b"first"
                break
        async with c.stream("POST", "/s", content=b"{}") as resp:
            async for _chunk in resp.aiter_bytes():
                break
        assert srv.connections == 2  # the half-read connection was not reused


def test_header_injection_is_refused() -> None:
    c = Http1Client("http://127.0.0.1:9", timeout_s=1, connect_timeout_s=1)
    with pytest.raises(httpx.LocalProtocolError):
        c._encode("POST", "/x", b"", {"authorization": "Bearer k\r\nx-evil: 1"})


def test_line_decoder_matches_httpx_semantics() -> None:
    d = _LineDecoder()
    out = d.decode("a\r") + d.decode("\nb\rc") + d.decode("\n") + d.decode("tail")
    assert out + d.flush() == ["a", "b", "c", "tail"]


def test_wants_http1_only_for_plain_http_without_a_proxy() -> None:
    assert wants_http1("http://127.0.0.1:8080/v1", {})
    assert not wants_http1("https://api.openai.com/v1", {})
    assert not wants_http1("http://10.0.0.5:8000/v1", {"HTTP_PROXY": "http://proxy:3128"})
    assert wants_http1("http://10.0.0.5:8000/v1", {"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "10.0.0.5"})
    assert not wants_http1("http://gpu-box:8000/v1", {"ALL_PROXY": "http://proxy:3128"})
