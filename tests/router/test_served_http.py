"""The router as served by its HTTP server, on a real socket.

One `wilton-router` process per server with the fake upstream in this process; clients are raw
sockets (to control the bytes: keep-alive, pipelining, chunked bodies, malformed input,
disconnects) and the openai SDK. Ledger rows are read from the SQLite store (flushed every 50 ms).
The server limits themselves are tests/reliability/test_hostile_client.py; the fast server's
internals (back-pressure, in-process stop) are tests/router/test_server.py.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = [pytest.mark.e2e]

MAX_BODY = 64 * 1024

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
max_body_bytes = {max_body}
"""


@dataclass
class Router:
    port: int
    db: Path
    proc: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rows(self, request_ids: set[str] | None = None, *, wait_for: int = 0) -> list[tuple[str, str, int, str]]:
        """Ledger rows (request_id, status, stream, error_class), waiting up to 5 s for `wait_for` of them."""
        deadline = time.monotonic() + 5
        while True:
            with sqlite3.connect(self.db) as con:
                rows = [(str(a), str(b), int(c), str(d)) for a, b, c, d in con.execute(
                    "select request_id, status, stream, coalesce(error_class, '') from ledger")]
            if request_ids is not None:
                rows = [r for r in rows if r[0] in request_ids]
            if len(rows) >= wait_for or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(models=["m1"], name="server").start() as f:
        yield f


def _start(tmp: Path, fake: FakeUpstream, *extra: str, flush_s: str = "0.05") -> Router:
    cfg = tmp / "wilton.toml"
    cfg.write_text(ROUTER_TOML.format(fake=fake.url, max_body=MAX_BODY))
    port = free_port()
    db = tmp / "ledger.db"
    proc = ManagedProcess([sys.executable, "-m", "wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                           *extra], env={"WILTON_STORE_URL": f"sqlite:///{db}", "WILTON_LEDGER_FLUSH_S": flush_s,
                                         "WILTON_LOG_LEVEL": "warning"},
                          log=tmp / "router.log")
    proc.start(f"http://127.0.0.1:{port}/readyz", timeout=60)
    return Router(port, db, proc)


@pytest.fixture(scope="module")
def router(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    r = _start(tmp_path_factory.mktemp("served"), fake)
    try:
        yield r
    finally:
        r.proc.stop()


@pytest.fixture(autouse=True)
def _clean(fake: FakeUpstream) -> None:
    fake.clear()


def _chat(content: str, *, stream: bool = False) -> bytes:
    return orjson.dumps({"model": "auto", "stream": stream, "messages": [{"role": "user", "content": content}]})


def _post(body: bytes, *, extra: bytes = b"") -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n%s\r\n%s" % (len(body), extra, body))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One Content-Length response off the stream (what the router sends for JSON)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
    return status, headers, body


async def _open(router: Router) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", router.port)


async def _eof(reader: asyncio.StreamReader) -> bool:
    """The server closes the connection (whatever body it sent before) within 5 s."""
    try:
        await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return True
    return reader.at_eof()


async def test_keep_alive_serves_several_requests_on_one_connection(router: Router) -> None:
    reader, writer = await _open(router)
    ids = set()
    try:
        for word in ("one", "two", "three"):
            writer.write(_post(_chat(word)))
            status, headers, body = await _read_response(reader)
            assert status == 200, body
            assert orjson.loads(body)["choices"][0]["message"]["content"] == f"[m1] {word}"
            assert headers["x-wilton-model"] == "m1" and headers.get("connection") != "close"
            ids.add(headers["x-request-id"])
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n")
        assert (await _read_response(reader))[0] == 200
    finally:
        writer.close()
    assert len(router.rows(ids, wait_for=3)) == 3


async def test_pipelined_requests_are_answered_in_order(router: Router, fake: FakeUpstream) -> None:
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


async def test_chunked_request_body(router: Router) -> None:
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


async def test_declared_huge_body_gets_413_without_reading_it(router: Router) -> None:
    reader, writer = await _open(router)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-length: 1000000000\r\n\r\n{")
        status, _, body = await _read_response(reader)
        assert status == 413
        err = orjson.loads(body)["error"]
        assert err["code"] == "request_too_large" and err["type"] == "invalid_request_error"
        assert await _eof(reader)  # the rest of the declared body is never read
    finally:
        writer.close()


async def test_chunked_body_over_the_limit_gets_413(router: Router) -> None:
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


async def test_expect_100_continue(router: Router) -> None:
    reader, writer = await _open(router)
    try:
        body = _chat("after continue")
        writer.write(_post(b"", extra=b"expect: 100-continue\r\n").replace(b"content-length: 0",
                                                                           b"content-length: %d" % len(body)))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        writer.write(body)
        status, _, out = await _read_response(reader)
    finally:
        writer.close()
    assert status == 200 and b"after continue" in out


@pytest.mark.parametrize("garbage", [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                                     b"GET /healthz HTTP/1.1\r\nbad header\r\n\r\n"])
async def test_malformed_http_gets_400_and_close(router: Router, garbage: bytes) -> None:
    reader, writer = await _open(router)
    try:
        writer.write(garbage)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 505 ")), head
        assert await _eof(reader)
    finally:
        writer.close()


async def test_methods_head_and_errors_in_openai_shape(router: Router) -> None:
    async with httpx.AsyncClient(base_url=router.url) as c:
        r = await c.head("/healthz")
        assert r.status_code == 200 and r.content == b""
        r = await c.get("/v1/chat/completions")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert r.headers["allow"] == "POST"
        r = await c.delete("/healthz")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
        r = await c.get("/v1/nothing?x=1")
        assert r.status_code == 404 and r.json()["error"]["message"] == "Unknown path /v1/nothing."
        r = await c.post("/v1/chat/completions", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = await c.get("/v1/models")
        assert r.status_code == 200 and [m["id"] for m in r.json()["data"]] == ["auto", "m1"]


async def test_openai_sdk_json_and_sse_stream(router: Router) -> None:
    client = openai.AsyncOpenAI(base_url=router.url + "/v1", api_key="unused", max_retries=0, timeout=10)
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "plain"}])
        res = raw.parse()
        assert res.choices[0].message.content == "[m1] plain" and res.model == "m1"
        ids = {raw.headers["x-request-id"]}
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "streamed reply"}], stream=True,
            stream_options={"include_usage": True})
        ids.add(stream.response.headers["x-request-id"])
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
    rows = router.rows(ids, wait_for=2)
    assert sorted((r[2], r[1]) for r in rows) == [(0, "ok"), (1, "ok")]


async def test_sse_is_chunked_and_keeps_the_connection(router: Router) -> None:
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


async def test_client_disconnect_mid_stream_stops_the_relay_and_is_recorded(router: Router,
                                                                            fake: FakeUpstream) -> None:
    # 400 words at 40 tokens/s: the upstream stream would last about 10 s, longer than rows() waits
    fake.script("m1", tokens_per_s=40, reply_words=400)
    reader, writer = await _open(router)
    writer.write(_post(_chat("long story", stream=True)))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    rid = next(ln.split(b":", 1)[1].strip().decode() for ln in head.split(b"\r\n") if ln.startswith(b"x-request-id"))
    await asyncio.wait_for(reader.readuntil(b"data: "), 5)  # the stream has begun
    writer.transport.abort()
    await asyncio.sleep(0.05)  # the socket closes on the loop's next turn; rows() below blocks it
    [row] = router.rows({rid}, wait_for=1)
    assert row[1:] == ("stream_error", 1, "client_disconnected"), row


async def test_slow_reader_still_gets_the_whole_stream(router: Router, fake: FakeUpstream) -> None:
    # ~40,000 events (about 9 MB of SSE, more than the kernel buffers hold) to a client that stops
    # reading for a while: nothing is lost, the row is recorded once the stream ends
    fake.script("m1", reply_words=40000)
    reader, writer = await _open(router)
    writer.write(_post(_chat("flood me", stream=True)))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    rid = next(ln.split(b":", 1)[1].strip().decode() for ln in head.split(b"\r\n") if ln.startswith(b"x-request-id"))
    writer.transport.pause_reading()  # type: ignore[attr-defined]  # stop reading: the window fills
    await asyncio.sleep(0.5)
    assert router.rows({rid}) == []  # still streaming, not finished
    writer.transport.resume_reading()  # type: ignore[attr-defined]
    data = b""
    while not data.endswith(b"0\r\n\r\n"):
        piece = await asyncio.wait_for(reader.read(1 << 20), 10)
        assert piece, "connection closed before the stream ended"
        data += piece
    writer.close()
    assert b"data: [DONE]" in data
    [row] = router.rows({rid}, wait_for=1)
    assert row[1] == "ok"


@pytest.mark.slow
def test_sigterm_with_requests_in_flight(tmp_path: Path, fake: FakeUpstream) -> None:
    fake.script("m1", latency_ms=400)
    # the flush interval (5 s) is longer than the test: the rows are there because the stop flushed
    router = _start(tmp_path, fake, flush_s="5")
    n = 12

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=router.url, timeout=10,
                                     limits=httpx.Limits(max_connections=n)) as c:
            calls = [asyncio.create_task(c.post("/v1/chat/completions", content=_chat(f"in flight {i}")))
                     for i in range(n)]
            await asyncio.sleep(0.2)  # all sent, none answered (the upstream takes 400 ms)
            router.proc.signal(signal.SIGTERM)
            return await asyncio.gather(*calls)

    try:
        replies = asyncio.run(run())
        assert router.proc.proc is not None
        rc = router.proc.proc.wait(timeout=40)
    finally:
        router.proc.stop()
    assert [r.status_code for r in replies] == [200] * n, router.proc.log_text()[-2000:]
    assert rc == 0, router.proc.log_text()[-2000:]
    with sqlite3.connect(router.db) as con:
        rows = con.execute("select status, stream from ledger").fetchall()
    assert rows == [("ok", 0)] * n
