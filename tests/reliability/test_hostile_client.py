"""Hostile clients against a real `wilton-router` process, once per HTTP server it can run.

Each case is one attack from issue 13 (slowloris variants, oversized and numerous headers, a
connection flood, request-smuggling shapes, a client leaving mid-body, protocol details), sent as
raw bytes on raw sockets. The server limits are set small through the settings (WILTON_ROUTER_*)
so every case ends in about a second; every wait is bounded (`BOUND`): a server that keeps a
connection open past it fails the case. docs/reliability.md "Server limits" records the figures
and what the same cases did before the limits existed (and to uvicorn, which cannot pass them).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = [pytest.mark.e2e]

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 1.0
MAX_CONNECTIONS = 8
MAX_HEADER_BYTES = 8192
MAX_HEADERS = 50
# a server that has not cut an attacker by then never will: 5x the longest limit, and far below
# the 40+ s the attacks held connections before the limits existed
BOUND = 5.0

CONFIG = """
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

CHAT = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hello"}]})


@dataclass
class Router:
    kind: str
    port: int
    proc: ManagedProcess

    def connect(self, timeout: float = BOUND) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.settimeout(timeout)
        return s


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(models=["m1"], name="hostile").start() as f:
        yield f


@pytest.fixture(scope="module")
def router(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    kind = "fast"
    tmp = tmp_path_factory.mktemp(f"hostile-{kind}")
    cfg = tmp / "wilton.toml"
    cfg.write_text(CONFIG.format(fake=fake.url))
    port = free_port()
    env = {
        "WILTON_STORE_URL": f"sqlite:///{tmp / 'wilton.db'}", "WILTON_LOG_LEVEL": "warning",
        "WILTON_ROUTER_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "WILTON_ROUTER_KEEP_ALIVE_S": str(KEEP_ALIVE_S),
        "WILTON_ROUTER_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "WILTON_ROUTER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "WILTON_ROUTER_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "WILTON_ROUTER_MAX_HEADERS": str(MAX_HEADERS),
    }
    proc = ManagedProcess.python_module("wilton_core.router.cli", "--config", str(cfg), "--port", str(port),
                                        env=env, log=tmp / "router.log")
    proc.start(f"http://127.0.0.1:{port}/readyz", timeout=60)
    try:
        yield Router(kind, port, proc)
    finally:
        proc.stop()


# ---- reading what the server does ----------------------------------------------------------------


@dataclass
class Outcome:
    data: bytes
    closed: bool  # the server closed the connection (EOF or reset) within the bound

    def statuses(self) -> list[int]:
        # a pipelined answer's status line follows the previous body without a line break
        return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", self.data)]


def outcome(s: socket.socket, bound: float = BOUND) -> Outcome:
    """Everything the server sends until it closes the connection, or until `bound` passes."""
    data = b""
    deadline = time.monotonic() + bound
    try:
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            piece = s.recv(65536)
            if not piece:
                return Outcome(data, True)
            data += piece
    except (ConnectionResetError, BrokenPipeError):
        return Outcome(data, True)
    except TimeoutError:
        pass
    return Outcome(data, False)


def serves_normally(router: Router) -> None:
    """A well-behaved client still gets its answer."""
    with router.connect() as s:
        s.sendall(post(CHAT, close=True))
        got = outcome(s)
    assert got.statuses() == [200], got.data[:300]
    assert b"[m1] hello" in got.data


def post(body: bytes, *, close: bool = False, extra: bytes = b"") -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n%s%s\r\n%s" % (len(body), b"connection: close\r\n" if close else b"", extra, body))


# ---- slow senders ---------------------------------------------------------------------------------


@pytest.mark.parametrize("partial", [
    pytest.param(b"POST /v1/chat/compl", id="request-line"),
    pytest.param(b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-type: appl", id="headers"),
])
def test_partial_head_is_cut_by_the_header_timeout(router: Router, partial: bytes) -> None:
    with router.connect() as s:
        s.sendall(partial)
        got = outcome(s)
    assert got.closed, f"{router.kind}: a partial request head held the connection for {BOUND} s"
    assert set(got.statuses()) <= {408}, got.data[:300]
    serves_normally(router)


def test_slow_header_trickle_is_cut_by_the_header_timeout(router: Router) -> None:
    # a byte at a time, each well inside any per-read idle timer: only a deadline on the whole
    # head stops it
    with router.connect() as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
        closed = False
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            try:
                s.sendall(b"x")
                time.sleep(0.1)
            except OSError:
                closed = True
                break
        if not closed:
            closed = outcome(s, 0.5).closed
    assert closed, f"{router.kind}: a header trickle held the connection for {BOUND} s"


def test_partial_body_is_cut_by_the_body_timeout(router: Router) -> None:
    with router.connect() as s:
        s.sendall(post(b"x" * 1000)[:-990])  # Content-Length 1000, 10 bytes sent
        got = outcome(s)
    assert got.closed, f"{router.kind}: a partial body held the connection for {BOUND} s"
    assert set(got.statuses()) <= {408}, got.data[:300]
    if got.statuses():
        assert orjson.loads(got.data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
    serves_normally(router)


CHUNKED_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ntransfer-encoding: chunked\r\n\r\n"


def test_silent_streamed_body_is_cut_by_the_idle_deadline(router: Router) -> None:
    # a chunked body is streamed to the app: its deadline is the silence between chunks
    with router.connect() as s:
        s.sendall(CHUNKED_HEAD + b"5\r\n{\"mod\r\n")  # ... and then nothing
        got = outcome(s)
    assert got.closed, f"{router.kind}: a silent chunked sender held the connection for {BOUND} s"
    assert got.statuses() == [408], got.data[:300]
    assert orjson.loads(got.data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
    serves_normally(router)


def test_chunk_trickle_to_a_json_route_is_cut_by_its_whole_body_deadline(router: Router) -> None:
    # a byte every 200 ms never trips the idle deadline; the JSON route bounds the whole body
    with router.connect() as s:
        s.sendall(CHUNKED_HEAD)
        closed = False
        deadline = time.monotonic() + BOUND
        data = b""
        while time.monotonic() < deadline:
            try:
                s.sendall(b"1\r\n \r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            got = outcome(s, 0.2)
            data += got.data
            if got.closed:
                closed = True
                break
    assert closed, f"{router.kind}: a chunk trickle held the connection for {BOUND} s"
    assert re.findall(rb"HTTP/1\.[01] (\d{3}) ", data) in ([], [b"408"]), data[:300]
    serves_normally(router)


def test_idle_keep_alive_connection_is_closed(router: Router) -> None:
    with router.connect() as s:
        s.sendall(post(CHAT))
        got = outcome(s)
    assert got.statuses() == [200], got.data[:300]
    assert got.closed, f"{router.kind}: an idle keep-alive connection stayed open {BOUND} s"


def test_connection_opened_and_never_used_is_closed(router: Router) -> None:
    with router.connect() as s:
        got = outcome(s)
    assert got.closed and got.data == b"", got.data[:300]


# ---- oversized heads ------------------------------------------------------------------------------


def test_oversized_header_gets_431(router: Router) -> None:
    with router.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: r\r\nx-big: " + b"a" * (4 * MAX_HEADER_BYTES) + b"\r\n\r\n")
        got = outcome(s)
    assert got.statuses() == [431], got.data[:300]
    assert got.closed
    serves_normally(router)


def test_huge_header_stream_is_refused_without_reading_it_all(router: Router) -> None:
    # 64 MB of one header: the server must answer (431) or close long before taking it all
    sent = 0
    with router.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: r\r\nx-big: ")
        piece = b"a" * 65536
        try:
            while sent < 64 << 20:
                s.sendall(piece)
                sent += len(piece)
        except OSError:
            pass
        got = outcome(s)
    assert sent < 64 << 20, f"{router.kind}: read a 64 MB header"
    assert got.closed and set(got.statuses()) <= {431}, got.data[:300]


def test_too_many_headers_get_431(router: Router) -> None:
    many = b"".join(b"x-h%d: 1\r\n" % i for i in range(1000))
    with router.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: r\r\n" + many + b"\r\n")
        got = outcome(s)
    assert got.statuses() == [431], got.data[:300]
    assert got.closed


def test_headers_under_the_limits_are_served(router: Router) -> None:
    some = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 50) for i in range(MAX_HEADERS // 2))
    with router.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: r\r\nconnection: close\r\n" + some + b"\r\n")
        got = outcome(s)
    assert got.statuses() == [200], got.data[:300]


# ---- connection flood -----------------------------------------------------------------------------


def test_connection_flood_is_bounded_and_clients_are_served_after(router: Router) -> None:
    held = [router.connect() for _ in range(MAX_CONNECTIONS + 4)]
    try:
        for s in held:
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: r\r\n")  # a head that never ends
        # the flood does not starve a newcomer past the bound: it is answered, refused or
        # (its slot freed by the header timeout) served
        with router.connect() as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: r\r\nconnection: close\r\n\r\n")
            got = outcome(s)
        assert got.closed, f"{router.kind}: a newcomer waited {BOUND} s behind a connection flood"
        assert got.statuses() in ([200], [503]), got.data[:300]
        # every held connection is cut (header timeout, or refused at once as excess)
        for s in held:
            assert outcome(s).closed, f"{router.kind}: a flooding connection is still open"
    finally:
        for s in held:
            s.close()
    serves_normally(router)


# ---- smuggling shapes -----------------------------------------------------------------------------

SMUGGLE_TAIL = b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n"


@pytest.mark.parametrize("head", [
    pytest.param(b"content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", id="cl-and-te"),
    pytest.param(b"transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n", id="te-and-cl"),
    pytest.param(b"content-length: 2\r\ncontent-length: 40\r\n\r\n{}", id="two-content-lengths"),
    pytest.param(b"content-length: 2, 40\r\n\r\n{}", id="content-length-list"),
    pytest.param(b"content-length: -2\r\n\r\n{}", id="negative-content-length"),
    pytest.param(b"transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", id="chunk-size-not-hex"),
    pytest.param(b"transfer-encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n", id="chunk-size-negative"),
    pytest.param(b"transfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n", id="chunk-size-overflow"),
    pytest.param(b"transfer-encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", id="chunk-without-crlf"),
    pytest.param(b"transfer-encoding: xchunked\r\n\r\n0\r\n\r\n", id="unknown-transfer-coding"),
])
def test_smuggling_shapes_are_refused_and_closed(router: Router, head: bytes) -> None:
    with router.connect() as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-type: application/json\r\n"
                  + head + SMUGGLE_TAIL)
        got = outcome(s)
    codes = got.statuses()
    # one answer, a refusal, and the connection closed: the tail is never served as a second request
    assert len(codes) == 1 and 400 <= codes[0] < 500 and codes[0] != 404, (codes, got.data[:400])
    assert got.closed, f"{router.kind}: connection left open after an ambiguous body"
    assert b'{"status":"ok"}' not in got.data
    serves_normally(router)


# ---- clients leaving ------------------------------------------------------------------------------


def test_client_disconnect_mid_body_leaves_the_server_healthy(router: Router) -> None:
    for _ in range(20):
        s = router.connect()
        s.sendall(post(b"x" * 5000)[:-4000])
        s.close()
    serves_normally(router)
    assert router.proc.proc is not None and router.proc.proc.poll() is None


# ---- protocol details -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/v1/chat/completions", "POST"),
    ("DELETE", "/healthz", "GET, HEAD"),
    ("POST", "/v1/models", "GET, HEAD"),
])
def test_405_carries_allow(router: Router, method: str, path: str, allow: str) -> None:
    with router.connect() as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nhost: r\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        got = outcome(s)
    assert got.statuses() == [405], got.data[:300]
    head = got.data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert f"allow: {allow.lower()}" in head.split("\r\n"), head


def test_request_pipelined_after_an_upgrade_is_answered_or_refused(router: Router) -> None:
    with router.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: r\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
                  b"GET /v1/models HTTP/1.1\r\nhost: r\r\nconnection: close\r\n\r\n")
        got = outcome(s)
    codes = got.statuses()
    assert got.closed
    assert codes and codes[0] in (200, 400, 426), got.data[:400]
    if len(codes) == 2:
        assert codes[1] == 200 and b'"object":"list"' in got.data
    else:
        # refused: the one answer says the connection ends here, so the client knows the second
        # request was not read and may resend it
        assert len(codes) == 1 and b"connection: close" in got.data.lower(), got.data[:400]


def test_pipelined_requests_are_all_answered_in_order(router: Router) -> None:
    with router.connect() as s:
        s.sendall(post(CHAT) + b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n" + post(CHAT, close=True))
        got = outcome(s)
    assert got.statuses() == [200, 200, 200], got.data[:600]
    assert got.closed


def test_status_lines_use_the_standard_reason_phrases(router: Router) -> None:
    with router.connect() as s:
        s.sendall(b"GET /nothing HTTP/1.1\r\nhost: r\r\nconnection: close\r\n\r\n")
        got = outcome(s)
    assert got.data.startswith(b"HTTP/1.1 404 Not Found\r\n"), got.data[:100]


def test_fast_server_refuses_connections_over_the_cap_at_once(router: Router) -> None:
    held = [router.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.1)  # all accepted (the held ones are cut after 1 s idle)
        with router.connect() as s:
            got = outcome(s, 1.0)  # no request sent: the refusal comes from the accept alone
        assert got.closed and got.statuses() == [503], got.data[:300]
        assert orjson.loads(got.data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_many_connections"
    finally:
        for s in held:
            s.close()
    serves_normally(router)


@pytest.mark.parametrize(("flag", "value"), [("--max-headers", "1000"), ("--max-header-bytes", "10"),
                                             ("--header-timeout", "0"), ("--max-connections", "0")])
def test_limit_flags_are_validated(tmp_path, flag: str, value: str) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "wilton_core.router.cli", flag, value, "--validate-and-exit"],
                         env={"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "WILTON_ROUTER_" in out.stderr and "Traceback" not in out.stderr
