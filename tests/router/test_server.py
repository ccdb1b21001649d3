"""The router's own HTTP/1.1 server (router/server.py) on a real socket.

In-process tests run RouterApp + RouterService behind FastServer on port 0, with the fake
upstream in its thread; clients are raw sockets (to control the bytes: pipelining, chunked
bodies, malformed input, disconnects) and the openai SDK. The SIGTERM test runs a real
`wilton-router` process.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from wilton_core.config import parse_config
from wilton_core.router.app import RouterApp
from wilton_core.router.server import FastServer, Limits
from wilton_core.router.service import RouterService
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port
from wilton_core.types import LedgerRecord

MAX_BODY = 64 * 1024


class ListLedger:
    """Collects ledger records in memory (the service only calls submit)."""

    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def submit(self, rec: LedgerRecord) -> None:
        self.records.append(rec)


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(models=["m1"]).start() as f:
        yield f


def _config(url: str, max_body: int = MAX_BODY):
    return parse_config({"models": [{"id": "m1", "provider": "openai", "model": "m1", "base_url": url + "/v1",
                                     "tier": "selfhost", "is_local": True, "capability": "standard"}],
                         "routing": {"probe_models": False, "max_body_bytes": max_body}})


@pytest.fixture
async def router(fake: FakeUpstream):
    fake.clear()
    ledger = ListLedger()
    svc = RouterService(_config(fake.url), ledger=ledger, environ={})
    server = FastServer(RouterApp(svc), host="127.0.0.1", port=0, max_body_bytes=MAX_BODY)
    await server.start()
    try:
        yield {"server": server, "ledger": ledger, "port": server.port, "url": f"http://127.0.0.1:{server.port}"}
    finally:
        await server.stop()


def _chat(content: str, *, stream: bool = False) -> bytes:
    return orjson.dumps({"model": "auto", "stream": stream, "messages": [{"role": "user", "content": content}]})


def _post(body: bytes, *, extra: bytes = b"") -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n%s\r\n%s" % (len(body), extra, body))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One Content-Length response off the stream (what the server sends for JSON)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 5)
    return status, headers, body


async def _open(router: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", router["port"])


async def _eof(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(1), 5) == b""


async def test_keep_alive_serves_several_requests_on_one_connection(router) -> None:
    reader, writer = await _open(router)
    try:
        for word in ("one", "two", "three"):
            writer.write(_post(_chat(word)))
            status, headers, body = await _read_response(reader)
            assert status == 200, body
            assert orjson.loads(body)["choices"][0]["message"]["content"] == f"[m1] {word}"
            assert headers["x-wilton-model"] == "m1" and "connection" not in headers
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n")
        assert (await _read_response(reader))[0] == 200
    finally:
        writer.close()
    assert len(router["ledger"].records) == 3


async def test_pipelined_requests_are_answered_in_order(router, fake: FakeUpstream) -> None:
    # the first request is the slowest: answers must still come back in request order
    fake.script("m1", latency_ms=50, times=1)
    reader, writer = await _open(router)
    try:
        writer.write(_post(_chat("first")) + b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n" + _post(_chat("second"))
                     + b"GET /nope HTTP/1.1\r\nhost: r\r\n\r\n")
        got = [await _read_response(reader) for _ in range(4)]
    finally:
        writer.close()
    assert [s for s, _, _ in got] == [200, 200, 200, 404]
    assert orjson.loads(got[0][2])["choices"][0]["message"]["content"] == "[m1] first"
    assert orjson.loads(got[1][2]) == {"status": "ok"}
    assert orjson.loads(got[2][2])["choices"][0]["message"]["content"] == "[m1] second"
    assert orjson.loads(got[3][2])["error"]["code"] == "not_found"


async def test_chunked_request_body(router) -> None:
    body = _chat("in three chunks")
    parts = [body[:5], body[5:20], body[20:]]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    reader, writer = await _open(router)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(0, len(chunked), 7):  # and arriving in small TCP pieces
            writer.write(chunked[i:i + 7])
            await writer.drain()
        status, _, out = await _read_response(reader)
    finally:
        writer.close()
    assert status == 200, out
    assert orjson.loads(out)["choices"][0]["message"]["content"] == "[m1] in three chunks"


async def test_declared_huge_body_gets_413_without_reading_it(router) -> None:
    reader, writer = await _open(router)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-length: 1000000000\r\n\r\n{")
        status, headers, body = await _read_response(reader)
        assert status == 413
        assert headers["connection"] == "close"
        err = orjson.loads(body)["error"]
        assert err["code"] == "request_too_large" and err["type"] == "invalid_request_error"
        assert await _eof(reader)
    finally:
        writer.close()
    assert router["ledger"].records == []


async def test_chunked_body_over_the_limit_gets_413(router) -> None:
    reader, writer = await _open(router)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ntransfer-encoding: chunked\r\n\r\n")
        piece = b"x" * 16384
        for _ in range(MAX_BODY // len(piece) + 1):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        status, _, body = await _read_response(reader)
        assert status == 413 and orjson.loads(body)["error"]["code"] == "request_too_large"
        assert await _eof(reader)
    finally:
        writer.close()


async def test_expect_100_continue(router) -> None:
    reader, writer = await _open(router)
    try:
        body = _chat("after continue")
        writer.write(_post(b"", extra=b"expect: 100-continue\r\n").replace(b"content-length: 0",
                                                                           b"content-length: %d" % len(body)))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        status, _, out = await _read_response(reader)
    finally:
        writer.close()
    assert status == 200 and b"after continue" in out


@pytest.mark.parametrize("garbage", [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /healthz HTTP/1.1\r\nbad header\r\n\r\n"])
async def test_malformed_http_gets_400_and_close(router, garbage: bytes) -> None:
    reader, writer = await _open(router)
    try:
        writer.write(garbage)
        status, headers, body = await _read_response(reader)
        assert status == 400 and headers["connection"] == "close"
        assert orjson.loads(body)["error"]["type"] == "invalid_request_error"
        assert await _eof(reader)
    finally:
        writer.close()


async def test_methods_head_and_errors_in_openai_shape(router) -> None:
    async with httpx.AsyncClient(base_url=router["url"]) as c:
        r = await c.head("/healthz")
        assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "15"
        r = await c.get("/v1/chat/completions")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        r = await c.delete("/healthz")
        assert r.status_code == 405
        r = await c.get("/v1/nothing?x=1")
        assert r.status_code == 404 and r.json()["error"]["message"] == "Unknown path /v1/nothing."
        r = await c.post("/v1/chat/completions", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = await c.get("/v1/models")
        assert r.status_code == 200 and [m["id"] for m in r.json()["data"]] == ["auto", "m1"]


async def test_openai_sdk_json_and_sse_stream(router) -> None:
    client = openai.AsyncOpenAI(base_url=router["url"] + "/v1", api_key="unused", max_retries=0, timeout=10)
    try:
        res = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "plain"}])
        assert res.choices[0].message.content == "[m1] plain" and res.model == "m1"
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "streamed reply"}], stream=True,
            stream_options={"include_usage": True})
        text, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
            if chunk.usage:
                usage = chunk.usage
        assert "".join(text) == "[m1] streamed reply"
        assert usage is not None and usage.completion_tokens > 0
    finally:
        await client.close()
    recs = router["ledger"].records
    assert [(r.stream, r.status) for r in recs] == [(False, "ok"), (True, "ok")]


async def test_sse_is_chunked_and_keeps_the_connection(router) -> None:
    reader, writer = await _open(router)
    try:
        writer.write(_post(_chat("one stream", stream=True)))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"transfer-encoding: chunked" in head and b"text/event-stream" in head
        body = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        assert body.count(b"data: ") >= 3 and b"data: [DONE]" in body
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n")  # same connection, next request
        assert (await _read_response(reader))[0] == 200
    finally:
        writer.close()


async def test_client_disconnect_mid_stream_stops_the_relay_and_is_recorded(router, fake: FakeUpstream) -> None:
    # 200 words at 40 tokens/s: the upstream stream would last about 5 s
    fake.script("m1", tokens_per_s=40, reply_words=200)
    reader, writer = await _open(router)
    writer.write(_post(_chat("long story", stream=True)))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    await asyncio.wait_for(reader.readuntil(b"data: "), 5)  # the stream has begun
    t0 = time.monotonic()
    writer.transport.abort()
    ledger = router["ledger"]
    while not ledger.records and time.monotonic() - t0 < 3:
        await asyncio.sleep(0.02)
    assert time.monotonic() - t0 < 2, "the relay kept reading the upstream after the client left"
    [rec] = ledger.records
    assert rec.stream and rec.status == "stream_error" and rec.error_class == "client_disconnected"


async def test_stop_finishes_in_flight_requests(router, fake: FakeUpstream) -> None:
    fake.script("m1", latency_ms=300)
    server: FastServer = router["server"]
    async with httpx.AsyncClient(base_url=router["url"], timeout=10) as c:
        calls = [asyncio.create_task(c.post("/v1/chat/completions", content=_chat(f"q{i}"))) for i in range(5)]
        # all five reach the upstream before the stop (a fixed sleep lost the race on a loaded box:
        # a request not yet connected when the listener closes is refused, which is correct)
        deadline = asyncio.get_running_loop().time() + 10
        while fake.stats()["total"] < 5:
            assert asyncio.get_running_loop().time() < deadline, fake.stats()["total"]
            await asyncio.sleep(0.01)
        await server.stop()
        replies = await asyncio.gather(*calls)
        assert [r.status_code for r in replies] == [200] * 5
        assert all(r.headers.get("connection") == "close" for r in replies)
        with pytest.raises(httpx.ConnectError):
            await c.get("/healthz")
    assert len(router["ledger"].records) == 5


ROUTER_TOML = """
[[models]]
id = "m1"
provider = "openai"
model = "m1"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "standard"

[routing]
probe_models = false
"""


@pytest.mark.e2e
def test_sigterm_with_requests_in_flight(tmp_path: Path, fake: FakeUpstream) -> None:
    fake.clear()
    fake.script("m1", latency_ms=400)
    cfg = tmp_path / "wilton.toml"
    cfg.write_text(ROUTER_TOML.format(fake=fake.url))
    port = free_port()
    db = tmp_path / "ledger.db"
    proc = ManagedProcess([sys.executable, "-m", "wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                           ], env={"WILTON_STORE_URL": f"sqlite:///{db}",
                                                     "WILTON_LEDGER_FLUSH_S": "5"},
                          log=tmp_path / "router.log")
    proc.start(f"http://127.0.0.1:{port}/readyz", timeout=60)
    n = 12

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                     limits=httpx.Limits(max_connections=n)) as c:
            calls = [asyncio.create_task(c.post("/v1/chat/completions", content=_chat(f"in flight {i}")))
                     for i in range(n)]
            await asyncio.sleep(0.2)  # all sent, none answered (the upstream takes 400 ms)
            proc.signal(signal.SIGTERM)
            return await asyncio.gather(*calls)

    try:
        replies = asyncio.run(run())
        assert proc.proc is not None
        rc = proc.proc.wait(timeout=20)
    finally:
        proc.stop()
    assert [r.status_code for r in replies] == [200] * n, proc.log_text()[-2000:]
    assert rc == 0, proc.log_text()[-2000:]
    # the flush interval (5 s) is longer than the test: the rows are there because stop() flushed
    with sqlite3.connect(db) as con:
        rows = con.execute("select status, stream from ledger").fetchall()
    assert rows == [("ok", 0)] * n


async def test_slow_reader_gets_back_pressure_not_a_growing_buffer(router, fake: FakeUpstream) -> None:
    # ~40,000 events (about 9 MB of SSE, more than the kernel buffers hold) as fast as the upstream can send them, to a client that
    # stops reading: the server must pause (wait for a drain) instead of queueing it all in memory
    fake.script("m1", reply_words=40000)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", router["port"]))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(_post(_chat("flood me", stream=True)))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.transport.pause_reading()  # type: ignore[attr-defined]  # stop reading: the window fills
    await asyncio.sleep(0.5)
    server: FastServer = router["server"]
    [conn] = [c for c in server._state.connections if c.streaming]  # type: ignore[union-attr]
    assert conn.write_paused, "the server never saw back-pressure"
    assert conn.transport.get_write_buffer_size() < 512 * 1024
    assert router["ledger"].records == []  # still streaming, not finished
    writer.transport.resume_reading()  # type: ignore[attr-defined]
    data = b""
    while not data.endswith(b"0\r\n\r\n"):
        piece = await asyncio.wait_for(reader.read(1 << 20), 10)
        assert piece, "connection closed before the stream ended"
        data += piece
    writer.close()
    assert data.rstrip().endswith(b"0") and b"data: [DONE]" in data
    t0 = time.monotonic()
    while not router["ledger"].records and time.monotonic() - t0 < 2:
        await asyncio.sleep(0.01)
    [rec] = router["ledger"].records
    assert rec.status == "ok" and rec.tokens_out >= 40000


# ---- streamed request bodies (a chunked upload on an idle connection) -----------------------------
# A small ASGI app shows what the server hands over and when: /echo answers each chunk as it
# arrives (live transcription's shape), /collect reads the whole body and answers once, /early
# answers without reading. `seen` records every message the app received.

STREAM_LIMIT = 4096
IDLE_S = 1.0  # the idle deadline between chunks of a streamed body (Limits.body_timeout_s)


class StreamApp:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.gate = asyncio.Event()  # /collect waits for it before reading (flow control case)
        self.gate.set()
        self.done = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        self.done.clear()
        try:
            await self._handle(scope, receive, send)
        except asyncio.CancelledError:
            self.seen.append({"type": "cancelled"})  # a streamed answer nobody reads is cancelled
            raise
        finally:
            self.done.set()

    async def _handle(self, scope, receive, send) -> None:
        path = scope["path"]
        if path == "/early":
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b"early"})
            return
        if path == "/echo":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            while True:
                msg = await receive()
                self.seen.append(msg)
                if msg["type"] == "http.disconnect":
                    return
                await send({"type": "http.response.body", "body": b"got %d\n" % len(msg["body"]),
                            "more_body": msg["more_body"]})
                if not msg["more_body"]:
                    return
        await self.gate.wait()
        size = 0
        while True:
            msg = await receive()
            self.seen.append(msg)
            if msg["type"] == "http.disconnect":
                return
            size += len(msg["body"])
            if not msg["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"total %d" % size})


@pytest.fixture
async def stream_server():
    app = StreamApp()
    server = FastServer(app, host="127.0.0.1", port=0, max_body_bytes=STREAM_LIMIT, lifespan=False,
                        limits=Limits(body_timeout_s=IDLE_S, keep_alive_s=10.0))
    await server.start()
    try:
        yield app, server
    finally:
        await server.stop()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _upload(path: str) -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: r\r\ntransfer-encoding: chunked\r\n\r\n" % path.encode()


async def _open_port(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _line(reader: asyncio.StreamReader) -> bytes:
    """The next payload line of a chunked text answer (skipping the chunk-size lines)."""
    while True:
        line = (await asyncio.wait_for(reader.readline(), 5)).rstrip(b"\r\n")
        if line and not all(c in b"0123456789abcdef" for c in line):
            return line


async def test_streamed_body_reaches_the_app_while_the_upload_goes_on(stream_server) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/echo") + _chunk(b"a" * 10))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head
        # the answer to the first chunk came back before the second one was even sent
        assert await _line(reader) == b"got 10"
        writer.write(_chunk(b"b" * 20))
        assert await _line(reader) == b"got 20"
        writer.write(b"0\r\n\r\n")
        assert await _line(reader) == b"got 0"
        await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        # the connection carries the next request (buffered: Content-Length)
        writer.write(b"POST /collect HTTP/1.1\r\nhost: r\r\ncontent-length: 3\r\n\r\nxyz")
        status, _, body = await _read_response(reader)
        assert status == 200 and body == b"total 3"
    finally:
        writer.close()
    assert [m["more_body"] for m in app.seen[:3]] == [True, True, False]


async def test_streamed_body_outlives_the_whole_body_deadline_while_chunks_keep_coming(stream_server) -> None:
    _, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/collect"))
        # twice the deadline in all, never more than a tenth of it silent: a live recording
        for _ in range(20):
            writer.write(_chunk(b"x"))
            await writer.drain()
            await asyncio.sleep(IDLE_S / 10)
        writer.write(b"0\r\n\r\n")
        status, _, body = await _read_response(reader)
    finally:
        writer.close()
    assert status == 200 and body == b"total 20"


async def test_silent_streamed_sender_is_cut_by_the_idle_deadline(stream_server) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/collect") + _chunk(b"x" * 5))  # ... and then nothing
        status, headers, body = await _read_response(reader)
        assert status == 408 and headers["connection"] == "close"
        assert orjson.loads(body)["error"]["code"] == "request_timeout"
        assert await _eof(reader)
    finally:
        writer.close()
    await asyncio.wait_for(app.done.wait(), 5)
    assert app.seen[-1] == {"type": "http.disconnect"}  # the app was told, not left waiting


async def test_silent_sender_after_the_answer_started_loses_the_connection(stream_server) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/echo") + _chunk(b"x" * 5))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert await _line(reader) == b"got 5"
        rest = await asyncio.wait_for(reader.read(), 5)  # EOF: no 408 after a half-sent answer
        assert b"HTTP/1.1" not in rest
    finally:
        writer.close()
    await asyncio.wait_for(app.done.wait(), 5)
    assert app.seen[-1] == {"type": "http.disconnect"}


async def test_oversized_streamed_body_gets_413_and_the_app_a_disconnect(stream_server) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/collect"))
        for _ in range(STREAM_LIMIT // 1000 + 1):
            writer.write(_chunk(b"x" * 1000))
        status, headers, body = await _read_response(reader)
        assert status == 413 and headers["connection"] == "close"
        assert orjson.loads(body)["error"]["code"] == "request_too_large"
        assert await _eof(reader)
    finally:
        writer.close()
    await asyncio.wait_for(app.done.wait(), 5)
    assert app.seen[-1] == {"type": "http.disconnect"}
    assert sum(len(m.get("body", b"")) for m in app.seen) <= STREAM_LIMIT  # never handed more than the limit


async def test_oversized_streamed_body_after_the_answer_started_closes(stream_server) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/echo") + _chunk(b"x" * 1000))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert await _line(reader) == b"got 1000"
        writer.write(_chunk(b"x" * STREAM_LIMIT))
        rest = await asyncio.wait_for(reader.read(), 5)
        assert b"HTTP/1.1" not in rest and b"got %d" % STREAM_LIMIT not in rest
    finally:
        writer.close()
    await asyncio.wait_for(app.done.wait(), 5)
    assert app.seen[-1] == {"type": "http.disconnect"}


@pytest.mark.parametrize(("path", "ends"), [("/collect", "http.disconnect"), ("/echo", "cancelled")])
async def test_client_leaving_mid_stream_tells_the_app_and_the_server_stays_healthy(stream_server, path: str,
                                                                                    ends: str) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    writer.write(_upload(path) + _chunk(b"x" * 7))
    if path == "/echo":  # an answer is streaming when the client leaves
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert await _line(reader) == b"got 7"
    else:
        for _ in range(500):  # bounded: until the app has the first chunk
            if app.seen:
                break
            await asyncio.sleep(0.01)
        assert app.seen[0]["body"] == b"x" * 7
    writer.close()
    await asyncio.wait_for(app.done.wait(), 5)
    assert app.seen[-1] == {"type": ends}
    reader, writer = await _open_port(server.port)
    try:
        writer.write(b"POST /collect HTTP/1.1\r\nhost: r\r\ncontent-length: 2\r\n\r\nok")
        assert (await _read_response(reader))[2] == b"total 2"
    finally:
        writer.close()


async def test_request_pipelined_after_a_streamed_one_is_answered_in_order(stream_server) -> None:
    _, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        # the second chunked upload arrives while the first runs: it takes the buffered path
        writer.write(_upload("/collect") + _chunk(b"abc") + b"0\r\n\r\n"
                     + _upload("/collect") + _chunk(b"defgh") + b"0\r\n\r\n"
                     + b"POST /collect HTTP/1.1\r\nhost: r\r\ncontent-length: 1\r\n\r\nz")
        got = [await _read_response(reader) for _ in range(3)]
    finally:
        writer.close()
    assert [g[2] for g in got] == [b"total 3", b"total 5", b"total 1"]


async def test_app_answering_before_the_upload_ends_keeps_the_connection_usable(stream_server) -> None:
    _, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/early") + _chunk(b"x" * 100))
        status, _, body = await _read_response(reader)
        assert status == 202 and body == b"early"
        # the rest of the upload is read and dropped; then the next request is served
        writer.write(_chunk(b"y" * 100) + b"0\r\n\r\n" + b"POST /collect HTTP/1.1\r\nhost: r\r\ncontent-length: 1\r\n\r\nz")
        assert (await _read_response(reader))[2] == b"total 1"
    finally:
        writer.close()


async def test_malformed_chunk_in_a_streamed_body_gets_400_and_the_app_a_disconnect(stream_server) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/collect") + _chunk(b"abc"))
        for _ in range(500):  # bounded: until the app has the first chunk
            if app.seen:
                break
            await asyncio.sleep(0.01)
        writer.write(b"zz\r\nnot a chunk\r\n")
        status, headers, body = await _read_response(reader)
        assert status == 400 and headers["connection"] == "close"
        assert orjson.loads(body)["error"]["code"] == "bad_request"
        assert await _eof(reader)
    finally:
        writer.close()
    await asyncio.wait_for(app.done.wait(), 5)
    assert app.seen == [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]


async def test_content_length_body_is_still_handed_over_whole(stream_server) -> None:
    app, server = stream_server
    reader, writer = await _open_port(server.port)
    try:
        writer.write(b"POST /collect HTTP/1.1\r\nhost: r\r\ncontent-length: 6\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(0.05)  # (the two halves usually arrive in two reads; whole either way)
        writer.write(b"def")
        assert (await _read_response(reader))[2] == b"total 6"
    finally:
        writer.close()
    assert app.seen == [{"type": "http.request", "body": b"abcdef", "more_body": False}]


async def test_streamed_body_pauses_reading_while_the_app_does_not_read() -> None:
    from wilton_core.router import server as server_mod

    app = StreamApp()
    app.gate.clear()  # /collect does not read until the gate opens
    big = server_mod._STREAM_HIGH * 8
    server = FastServer(app, host="127.0.0.1", port=0, max_body_bytes=big * 2, lifespan=False,
                        limits=Limits(body_timeout_s=IDLE_S))
    await server.start()
    reader, writer = await _open_port(server.port)
    try:
        writer.write(_upload("/collect"))
        piece = b"x" * 65536
        sender = asyncio.ensure_future(_send_all(writer, [_chunk(piece)] * (big // len(piece)) + [b"0\r\n\r\n"]))
        conns = server._state.connections if server._state is not None else set()
        for _ in range(500):  # bounded: until the server stops reading this socket
            if any(c.reading_paused for c in conns):
                break
            await asyncio.sleep(0.01)
        paused = [c for c in conns if c.reading_paused]
        assert paused, "the server kept reading a body nobody read"
        stream = paused[0].stream
        # what waits unread is bounded: the mark plus at most one socket read (256 KiB) past it
        assert stream is not None and stream.unread <= 2 * server_mod._STREAM_HIGH + 1024 < big
        await asyncio.sleep(IDLE_S * 1.5)  # paused by us: the client is not timed meanwhile
        app.gate.set()
        status, _, body = await _read_response(reader)
        await sender
    finally:
        writer.close()
        await server.stop()
    assert status == 200 and body == b"total %d" % (big // len(piece) * len(piece))


async def _send_all(writer: asyncio.StreamWriter, parts: list[bytes]) -> None:
    for p in parts:
        writer.write(p)
        await writer.drain()
