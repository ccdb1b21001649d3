"""The pieces under the hostile-upstream suite: ErrorScope/upstream_call, ByteBudget, Deadline, http1 caps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from wilton_core.config import ModelConfig, RoutingConfig
from wilton_core.errors import (
    AuthError,
    BadRequestError,
    ResponseTooLargeError,
    UnavailableError,
    UpstreamTimeoutError,
)
from wilton_core.providers.errors_map import ErrorScope, error_from_exception, upstream_call
from wilton_core.providers.http1 import Http1Client
from wilton_core.providers.limits import ByteBudget, Deadline, UpstreamLimits

SECRET = "sk-limits-secret-0123456789"


class Thing:
    """A minimal provider-shaped object: what `upstream_call` needs is `error_scope()`."""

    def __init__(self) -> None:
        self.closed = False

    def error_scope(self) -> ErrorScope:
        return ErrorScope("thing", "t1", (SECRET,))

    @upstream_call
    async def call(self, fail: BaseException | None) -> int:
        if fail is not None:
            raise fail
        return 1

    @upstream_call
    async def gen(self, fail_at: int | None) -> AsyncIterator[int]:
        try:
            for i in range(5):
                if i == fail_at:
                    raise KeyError(f"choices {SECRET}")
                yield i
        finally:
            self.closed = True

    def translate(self, body: object) -> None:
        with self.error_scope().request():
            body["messages"][0]["content"].upper()  # type: ignore[index]


async def test_upstream_call_maps_anything_to_a_provider_error_and_scrubs_secrets() -> None:
    t = Thing()
    assert await t.call(None) == 1
    with pytest.raises(UnavailableError, match="malformed reply") as info:
        await t.call(TypeError(f"bad {SECRET}"))
    assert SECRET not in str(info.value) and info.value.provider == "thing"
    auth = AuthError("no key")
    with pytest.raises(AuthError) as again:
        await t.call(auth)
    assert again.value is auth and auth.provider == "thing"  # passed through, told whose it is
    with pytest.raises(asyncio.CancelledError):  # never swallowed
        await t.call(asyncio.CancelledError())


async def test_upstream_call_on_a_generator_maps_errors_and_closes_it_at_once() -> None:
    t = Thing()
    with pytest.raises(UnavailableError):
        _ = [i async for i in t.gen(2)]
    t2 = Thing()
    agen = t2.gen(None)
    assert await anext(agen) == 0
    await agen.aclose()  # the consumer stops early: the inner generator's finally ran now
    assert t2.closed


def test_request_scope_blames_the_request() -> None:
    with pytest.raises(BadRequestError, match="cannot be sent") as info:
        Thing().translate({"messages": [{"content": 5}]})
    assert info.value.status == 400 and info.value.kind == "bad_request"


def test_timeouts_have_their_own_kind_but_connect_timeouts_stay_unavailable() -> None:
    assert error_from_exception(httpx.ReadTimeout("slow")).kind == "timeout"
    assert isinstance(error_from_exception(TimeoutError()), UpstreamTimeoutError)
    err = error_from_exception(httpx.ConnectTimeout("x"))
    assert err.kind == "unavailable" and "connection failed" in err.message


def test_byte_budget_total_and_line() -> None:
    b = ByteBudget(100, 10, "w")
    b.feed(b"123456789\n" * 5)  # 50 bytes, every line 9 long
    b.feed(b"12345")
    with pytest.raises(ResponseTooLargeError, match="max_event_bytes=10"):
        b.feed(b"678901")  # the line is now 11 long: across two chunks
    total = ByteBudget(100, None, "w")
    total.feed(b"x" * 100)  # one long line is fine for a JSON body
    with pytest.raises(ResponseTooLargeError, match="max_response_bytes=100"):
        total.feed(b"x")


def test_limits_come_from_the_model_then_routing() -> None:
    m = ModelConfig(id="m", provider="openai", model="m", tier="edge", is_local=False, timeout_s=7.0)
    assert UpstreamLimits.of(m) == UpstreamLimits(16 * 1024 * 1024, 1024 * 1024, 600.0, 7.0)
    r = RoutingConfig(max_response_bytes=1000, max_event_bytes=100, max_duration_s=30.0)
    assert UpstreamLimits.of(m, r) == UpstreamLimits(1000, 100, 30.0, 7.0)
    own = m.model_copy(update={"max_response_bytes": 5, "stream_idle_timeout_s": 1.5})
    assert UpstreamLimits.of(own, r) == UpstreamLimits(5, 100, 30.0, 1.5)


async def test_deadline_idle_is_reset_by_events_only_and_total_bounds_all() -> None:
    async def ticks(every: float, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(every)
            yield i

    lim = UpstreamLimits(1, 1, max_duration_s=5.0, stream_idle_timeout_s=0.2)
    got = [i async for i in Deadline(lim, "w").events(ticks(0.01, 5))]
    assert got == [0, 1, 2, 3, 4]
    with pytest.raises(UpstreamTimeoutError, match="stream_idle_timeout_s"):
        _ = [i async for i in Deadline(lim, "w").events(ticks(1.0, 2))]
    short = UpstreamLimits(1, 1, max_duration_s=0.1, stream_idle_timeout_s=5.0)
    with pytest.raises(UpstreamTimeoutError, match="max_duration_s"):
        _ = [i async for i in Deadline(short, "w").events(ticks(0.02, 1000))]
    with pytest.raises(UpstreamTimeoutError, match="max_duration_s"):
        await Deadline(short, "w").run(asyncio.sleep(5))


# -- the lean http1 client against a raw server -----------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(reply_head: bytes, body_chunks: int) -> tuple[asyncio.Server, list[int]]:
    written = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)  # the b"{}" body
        writer.write(reply_head)
        try:
            for _ in range(body_chunks):
                writer.write(b"a" * 65536)
                await writer.drain()
                written[0] += 65536
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, written


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",  # until close
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 419430400\r\n\r\n",
], ids=["read-until-close", "declared-length"])
async def test_http1_caps_a_reply_and_never_returns_it_truncated(head: bytes) -> None:
    server, written = await _serve(head, 128)  # 8 MiB offered
    port = server.sockets[0].getsockname()[1]
    client = Http1Client(f"http://127.0.0.1:{port}", timeout_s=5, connect_timeout_s=5,
                         max_response_bytes=1024 * 1024, label="raw m")
    try:
        with pytest.raises(ResponseTooLargeError, match="raw m"):
            await client.post("/v1/chat/completions", content=b"{}")
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert written[0] < 8 * 1024 * 1024


def test_limit_keys_are_validated_in_the_config_file() -> None:
    from wilton_core.config import parse_config
    from wilton_core.errors import ConfigError

    model = {"id": "m", "provider": "openai", "model": "m", "tier": "edge", "is_local": False}
    cfg = parse_config({"models": [{**model, "max_response_bytes": 1000, "stream_idle_timeout_s": 3}],
                        "routing": {"max_duration_s": 30, "max_event_bytes": 10}})
    assert UpstreamLimits.of(cfg.models[0], cfg.routing) == UpstreamLimits(1000, 10, 30.0, 3.0)
    for bad in ({"max_response_bytes": 0}, {"max_duration_s": float("inf")}, {"stream_idle_timeout_s": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            parse_config({"models": [{**model, **bad}]})
    with pytest.raises(ConfigError, match="max_duration_s"):
        parse_config({"models": [model], "routing": {"max_duration_s": float("nan")}})


def test_byte_budget_sees_a_long_line_ending_in_a_later_chunk() -> None:
    b = ByteBudget(10_000, 10, "w")
    b.feed(b"12345678")
    with pytest.raises(ResponseTooLargeError):
        b.feed(b"9012\nok\n")  # the carried line ends at 12 bytes, although the chunk ends cleanly
