"""Hostile upstreams: whatever an upstream sends, a provider raises a ProviderError or answers sanely.

Real provider code paths against wire fakes: httpx.MockTransport for the units (so a test can count
how many body bytes the provider pulled), and the fake upstream server on port 0 for the lean
http1 client and for streams paced in real time. Each case was a bug (see docs/reliability.md,
"Hostile upstreams"): a 500 from a malformed `usage`, OverflowError from usage 1e308, negative
counts stored as-is, 1.5 GB of memory for a 400 MB body, a stream held open by `: ping` comments,
a TypeError on a client's `tool_calls: 5`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import httpx
import orjson
import pytest

from wilton_core.config import ModelConfig
from wilton_core.errors import (
    BadRequestError,
    ProviderError,
    ResponseTooLargeError,
    UnavailableError,
    UpstreamTimeoutError,
)
from wilton_core.providers.base import Provider
from wilton_core.providers.factory import make_provider
from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.fake_wire import ParsedRequest, Reply, render_complete, render_stream
from wilton_core.types import MAX_TOKEN_COUNT

KEY = "sk-hostile-not-a-real-key-0123456789"
ENV = {"HOSTILE_KEY": KEY}
WIRES = ("openai", "ollama", "anthropic", "gemini")
MiB = 1024 * 1024
CHUNK = 64 * 1024


def model_config(kind: str, base_url: str, **kw: Any) -> ModelConfig:
    fields: dict[str, Any] = dict(id=f"{kind}-m1", provider=kind, model="m1",
                                  base_url=base_url + "/v1" if kind == "openai" else base_url, tier="edge",
                                  is_local=False, api_key_env="HOSTILE_KEY", timeout_s=5.0)
    fields.update(kw)
    return ModelConfig(**fields)


def chat(**kw: Any) -> dict[str, Any]:
    return {"model": "x", "messages": [{"role": "user", "content": "hello there"}], **kw}


async def drain(p: Provider, body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c async for c in p.stream(body)]


# -- MockTransport plumbing ------------------------------------------------------------------------

class CountingStream(httpx.AsyncByteStream):
    """A reply body handed out in chunks; `pulled` is how much the client actually read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            self.pulled += len(c)
            yield c


def _ctype(wire: str, stream: bool) -> str:
    if not stream:
        return "application/json"
    return "application/x-ndjson" if wire == "ollama" else "text/event-stream"


class Upstream:
    """A MockTransport whose every reply is `respond(request)` (body bytes, or a CountingStream)."""

    def __init__(self, respond: Callable[[httpx.Request], bytes | CountingStream], status: int = 200,
                 headers: dict[str, str] | None = None) -> None:
        self.respond = respond
        self.status = status
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        stream = request.url.path.endswith(":streamGenerateContent") or b'"stream":true' in request.content
        body = self.respond(request)
        headers = {"content-type": _ctype(_wire_of(request), stream), **self.headers}
        if isinstance(body, bytes):
            return httpx.Response(self.status, content=body, headers=headers)
        return httpx.Response(self.status, stream=body, headers=headers)


def _wire_of(request: httpx.Request) -> str:
    path = request.url.path
    if path.endswith("/chat/completions"):
        return "openai"
    if path.endswith("/api/chat"):
        return "ollama"
    if path.endswith("/v1/messages"):
        return "anthropic"
    return "gemini"


def provider(kind: str, upstream: Upstream, **kw: Any) -> Provider:
    return make_provider(model_config(kind, "http://upstream.test", **kw), transport=upstream.transport, environ=ENV)


def good_reply(wire: str, stream: bool = False, text: str = "hi there") -> ParsedRequest:
    return ParsedRequest(wire, "m1", stream, include_usage=True, last_user=text, prompt_chars=11)


def reply_bytes(wire: str, stream: bool) -> bytes:
    req = good_reply(wire, stream)
    r = Reply(["hi", " there"], None, "stop", 3, 2)
    if not stream:
        return render_complete(req, r)
    head, toks, tail = render_stream(req, r)
    return b"".join(head + toks + tail)


# -- bad usage ------------------------------------------------------------------------------------------

BAD_COUNTS: list[Any] = ["n/a", -5, 1e308, {"nested": 1}, [1, 2], True, None, 12.7]
RAW_BAD_COUNTS = [b"NaN", b"-Infinity", b"1e999"]  # not JSON orjson accepts: the reply is malformed


def _with_usage(wire: str, stream: bool, count: Any) -> bytes:
    """A valid reply of `wire` whose prompt token count is `count` (any JSON value)."""
    raw = reply_bytes(wire, stream)
    marker = {"openai": b'"prompt_tokens":3', "ollama": b'"prompt_eval_count":3',
              "anthropic": b'"input_tokens":3', "gemini": b'"promptTokenCount":3'}[wire]
    assert marker in raw, raw
    value = count if isinstance(count, bytes) else orjson.dumps(count)
    return raw.replace(marker, marker.rsplit(b":", 1)[0] + b":" + value)


def _sane(usage: dict[str, Any]) -> None:
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert type(usage[k]) is int and 0 <= usage[k] <= 2 * MAX_TOKEN_COUNT, usage


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("count", BAD_COUNTS, ids=repr)
async def test_bad_usage_is_sanitised_never_a_crash(wire: str, count: Any) -> None:
    for stream in (False, True):
        up = Upstream(lambda _r, s=stream: _with_usage(wire, s, count))
        p = provider(wire, up)
        try:
            if stream:
                chunks = await drain(p, chat())
                usage = chunks[-1]["usage"]
            else:
                c = await p.complete(chat())
                usage = c.data["usage"]
                assert usage == {**usage, **c.usage.as_openai()}
        except ProviderError as e:
            # Gemini's SDK validates the reply with pydantic: a count that is not a number fails the
            # call as a malformed reply (an upstream fault; fallback follows), never anything else.
            assert wire == "gemini" and isinstance(e, UnavailableError), (wire, count, e)
            continue
        finally:
            await p.aclose()
        _sane(usage)
        if count == 1e308:
            assert usage["prompt_tokens"] == MAX_TOKEN_COUNT
        elif count is None:
            pass  # absent: OpenAI reads 0, the others estimate from the text; either is sane
        elif wire == "gemini" and count is True:
            assert usage["prompt_tokens"] == 1  # the SDK's pydantic model reads true as 1 before we see it
        elif isinstance(count, int | float) and not isinstance(count, bool) and count >= 0:
            assert usage["prompt_tokens"] == int(count)
        else:
            assert usage["prompt_tokens"] == 0, (wire, count, usage)


@pytest.mark.parametrize("wire", ["openai", "ollama", "anthropic"])
async def test_bad_usage_reply_succeeds_for_the_translating_providers(wire: str) -> None:
    # The exact reproduction of issue 13: {"prompt_tokens": "n/a"} was a 500 for 20/20 requests.
    up = Upstream(lambda _r: _with_usage(wire, False, "n/a"))
    p = provider(wire, up)
    c = await p.complete(chat())
    await p.aclose()
    assert c.usage.prompt_tokens == 0 and c.usage.completion_tokens == 2


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("raw", RAW_BAD_COUNTS)
async def test_non_json_numbers_in_usage_are_a_malformed_reply(wire: str, raw: bytes) -> None:
    p = provider(wire, Upstream(lambda _r: _with_usage(wire, False, raw)))
    with pytest.raises(UnavailableError):
        await p.complete(chat())
    await p.aclose()


async def test_openai_usage_that_is_not_an_object_is_estimated() -> None:
    raw = reply_bytes("openai", False).replace(b'"usage":{', b'"usage":"lots","u":{')
    p = provider("openai", Upstream(lambda _r: raw))
    c = await p.complete(chat())
    await p.aclose()
    assert c.data["usage"] == c.usage.as_openai() and c.usage.completion_tokens > 0


# -- malformed replies -----------------------------------------------------------------------------------

DEEP = b"[" * 300 + b"]" * 300

MALFORMED: dict[str, list[bytes]] = {
    "openai": [b"<html>502</html>", b"[]", b'{"choices": 5}', b'{"choices": [5]}', b'{"choices": [{"message": 5}]}',
               b'{"choices": [{"message": {"content": 5}}]}',
               b'{"choices": [{"message": {"content": "x", "tool_calls": 5}}]}',
               b'{"choices": [{"message": {"content": "x"}}], "extra": ' + DEEP + b"}"],
    "ollama": [b"<html>", b"[]", b'{"message": 5}', b'{"message": {"content": 5}}',
               b'{"message": {"content": "", "tool_calls": 5}}', b'{"message": {"content": "", "tool_calls": [5]}}',
               b'{"message": {"content": "", "tool_calls": [{"function": {"name": "f", "arguments": ' + DEEP + b"}}]}}"],
    "anthropic": [b"<html>", b"[]", b'{"content": 5}', b'{"content": [5]}', b'{"content": [{"type": "text", "text": 5}]}',
                  b'{"content": [{"type": "tool_use", "id": 5, "name": "f"}]}', b'{"content": [{"type": "tool_use"}]}'],
    "gemini": [b"<html>", b"[]", b'{"candidates": 5}', b'{"candidates": [{"content": {"parts": 5}}]}'],
}


@pytest.mark.parametrize(("wire", "raw"), [(w, r) for w, rs in MALFORMED.items() for r in rs],
                         ids=lambda v: v if isinstance(v, str) else v[:40].decode(errors="replace"))
async def test_malformed_reply_is_unavailable_not_a_crash(wire: str, raw: bytes) -> None:
    p = provider(wire, Upstream(lambda _r: raw))
    with pytest.raises(UnavailableError) as info:
        await p.complete(chat())
    await p.aclose()
    assert info.value.provider == wire


MALFORMED_STREAMS: dict[str, list[bytes]] = {
    "openai": [b"data: {broken json\n\n", b"data: [1, 2]\n\n", b'data: {"choices": 5}\n\n',
               b'data: {"choices": [5]}\n\n', b'data: {"choices": [{"delta": {"content": 5}}]}\n\n',
               b'data: {"choices": [{"delta": {"tool_calls": [5]}}]}\n\n',
               b'data: {"choices": [{"delta": {}}], "x": ' + DEEP + b"}\n\n"],
    "ollama": [b"{broken\n", b"[1]\n", b'{"message": 5}\n', b'{"message": {"content": [1]}}\n'],
    "anthropic": [b"event: message_start\ndata: {broken\n\n", b'data: {"type": "message_start", "message": 5}\n\n',
                  b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}}\n\n',
                  b'data: {"type": "content_block_start", "index": "0", "content_block": {"type": "tool_use", '
                  b'"id": "t", "name": "f"}}\n\n'],
    "gemini": [b"data: {broken\n\n", b'data: {"candidates": 5}\n\n'],
}


@pytest.mark.parametrize(("wire", "raw"), [(w, r) for w, rs in MALFORMED_STREAMS.items() for r in rs],
                         ids=lambda v: v if isinstance(v, str) else v[:40].decode(errors="replace"))
async def test_malformed_stream_is_unavailable_not_a_crash(wire: str, raw: bytes) -> None:
    p = provider(wire, Upstream(lambda _r: raw))
    with pytest.raises(UnavailableError):
        await drain(p, chat())
    await p.aclose()


# -- huge replies -------------------------------------------------------------------------------------------

def _endless(first: bytes) -> Iterator[bytes]:
    """`first`, then 64 KiB of filler, 8 MiB in all: what a runaway upstream sends."""
    yield first
    for _ in range(8 * MiB // CHUNK):
        yield b"a" * CHUNK


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("stream", [False, True])
async def test_huge_reply_is_cut_at_the_limit(wire: str, stream: bool) -> None:
    bodies: list[CountingStream] = []

    def respond(_r: httpx.Request) -> CountingStream:
        head = b'data: {"x": "' if stream and wire != "ollama" else b'{"x": "'
        bodies.append(CountingStream(_endless(head)))
        return bodies[-1]

    # one stream line may be as large as the whole reply here: the total is what is tested
    p = provider(wire, Upstream(respond), max_response_bytes=MiB, max_event_bytes=MiB)
    with pytest.raises(ResponseTooLargeError) as info:
        await (drain(p, chat()) if stream else p.complete(chat()))
    await p.aclose()
    assert info.value.kind == "response_too_large" and "max_response_bytes" in str(info.value)
    assert len(bodies) == 1 and bodies[0].pulled <= MiB + CHUNK + 64, bodies[0].pulled  # stopped early


@pytest.mark.parametrize("wire", WIRES)
async def test_declared_huge_content_length_is_not_read_at_all(wire: str) -> None:
    bodies: list[CountingStream] = []

    def respond(_r: httpx.Request) -> CountingStream:
        bodies.append(CountingStream(_endless(b"{")))
        return bodies[-1]

    up = Upstream(respond, headers={"content-length": str(400 * MiB)})
    p = provider(wire, up, max_response_bytes=MiB)
    with pytest.raises(ResponseTooLargeError):
        await p.complete(chat())
    await p.aclose()
    assert bodies[0].pulled == 0


@pytest.mark.parametrize("wire", WIRES)
async def test_one_stream_line_over_max_event_bytes_fails_the_stream(wire: str) -> None:
    bodies: list[CountingStream] = []

    def respond(_r: httpx.Request) -> CountingStream:
        bodies.append(CountingStream(_endless(b"data: " if wire != "ollama" else b"")))
        return bodies[-1]

    p = provider(wire, Upstream(respond), max_event_bytes=256 * 1024)
    with pytest.raises(ResponseTooLargeError) as info:
        await drain(p, chat())
    await p.aclose()
    assert "max_event_bytes" in str(info.value)
    assert bodies[0].pulled <= 256 * 1024 + 2 * CHUNK


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_one_sse_event_of_many_data_lines_over_max_event_bytes_fails(wire: str) -> None:
    line = b"data: " + b"b" * 1000 + b"\n"
    p = provider(wire, Upstream(lambda _r: line * 200 + b"\n"), max_event_bytes=64 * 1024)
    with pytest.raises(ResponseTooLargeError):
        await drain(p, chat())
    await p.aclose()


# -- the client's body: a wrong shape is the request's fault -----------------------------------------------

BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("tool_calls=5", {"messages": [{"role": "assistant", "content": None, "tool_calls": 5}]}),
    ("tool_calls=['x']", {"messages": [{"role": "assistant", "content": None, "tool_calls": ["x"]}]}),
    ("function='f'", {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"function": "f"}]}]}),
    ("function.name=5", {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": 5}}]}]}),
    ("arguments=[1]", {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f",
                                                                                      "arguments": [1]}}]}]}),
    ("content=5", {"messages": [{"role": "user", "content": 5}]}),
    ("content=[5]", {"messages": [{"role": "user", "content": [5]}]}),
    ("text=5", {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}),
    ("image not data url", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]}),
    ("messages='hi'", {"messages": "hi"}),
    ("messages=[5]", {"messages": [5]}),
    ("role=5", {"messages": [{"role": 5, "content": "x"}]}),
    ("tool_call_id=5", {"messages": [{"role": "tool", "tool_call_id": 5, "content": "x"}]}),
    ("tools=5", {"messages": [{"role": "user", "content": "x"}], "tools": 5}),
    ("tools=[5]", {"messages": [{"role": "user", "content": "x"}], "tools": [5]}),
    ("tools function='x'", {"messages": [{"role": "user", "content": "x"}],
                            "tools": [{"type": "function", "function": "x"}]}),
    ("tools parameters=5", {"messages": [{"role": "user", "content": "x"}],
                            "tools": [{"type": "function", "function": {"name": "f", "parameters": 5}}]}),
    ("max_tokens='lots'", {"messages": [{"role": "user", "content": "x"}], "max_tokens": "lots"}),
    ("temperature='hot'", {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
    ("stop=5", {"messages": [{"role": "user", "content": "x"}], "stop": 5}),
    ("deep metadata", {"messages": [{"role": "user", "content": "x"}],
                       "tools": [{"type": "function", "function": {"name": "f", "parameters": orjson.loads(DEEP)}}]}),
]


@pytest.mark.parametrize("kind", ["ollama", "anthropic", "gemini"])
@pytest.mark.parametrize(("label", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_malformed_client_body_is_a_bad_request_and_never_sent(kind: str, label: str,
                                                                     body: dict[str, Any]) -> None:
    up = Upstream(lambda r: reply_bytes(_wire_of(r), False))
    p = provider(kind, up)
    for call in ("complete", "stream"):
        try:
            await (p.complete(body) if call == "complete" else drain(p, body))
        except BadRequestError as e:
            assert e.kind == "bad_request" and e.provider == kind
        except ProviderError as e:  # never an upstream-fault class for the client's mistake
            pytest.fail(f"{kind} {call} {label}: {type(e).__name__}: {e}")
        else:
            # the provider found a faithful translation (e.g. Gemini ignores an unused field):
            # then it must have reached the upstream and answered normally
            assert up.requests, (kind, label)
    await p.aclose()
    assert all(_wire_of(r) == kind or kind == "gemini" for r in up.requests)


@pytest.mark.parametrize("kind", ["ollama", "anthropic", "gemini"])
@pytest.mark.parametrize("tool_calls", [5, ["x"], [{"function": "f"}]], ids=repr)
async def test_issue_13_tool_calls_give_bad_request_before_any_upstream_call(kind: str, tool_calls: Any) -> None:
    up = Upstream(lambda r: reply_bytes(_wire_of(r), False))
    p = provider(kind, up)
    body = {"messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": None, "tool_calls": tool_calls}]}
    with pytest.raises(BadRequestError, match="tool_calls"):
        await p.complete(body)
    with pytest.raises(BadRequestError, match="tool_calls"):
        await drain(p, body)
    await p.aclose()
    assert up.requests == []


@pytest.mark.parametrize("kind", ["openai", "ollama", "anthropic"])
async def test_unencodable_body_is_a_bad_request(kind: str) -> None:
    # orjson encodes 254 levels at most: a deeper passed-through field is the client's fault (issue 13,
    # item 1: it was "unavailable" and opened every breaker). Gemini's SDK encodes with the stdlib
    # (no such limit) and the dummy reads no such field: for them it is simply not an error.
    body = chat(metadata=orjson.loads(DEEP), tools=[{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"x": orjson.loads(DEEP)}}}}])
    up = Upstream(lambda r: reply_bytes(_wire_of(r), False))
    p = provider(kind, up)
    try:
        with pytest.raises(BadRequestError):
            await p.complete(body)
    finally:
        await p.aclose()
    assert up.requests == []


# -- real servers: the lean http1 client and paced streams --------------------------------------------------

@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeUpstream]:
    fake = FakeUpstream(models=("m1",)).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.clear()
    return fake_server


CLIENTS: dict[str, Literal["auto", "httpx"]] = {"http1": "auto", "httpx": "httpx"}


async def _sent_bytes(fake: FakeUpstream, model: str) -> int:
    """What the fake wrote of its reply; it notes it when its handler ends, just after our error."""
    for _ in range(500):  # bounded: 5 s
        sent = fake.stats()["sent_bytes"].get(model)
        if sent is not None:
            return int(sent)
        await asyncio.sleep(0.01)
    raise AssertionError("the fake upstream never finished its reply")


def real(kind: str, fake: FakeUpstream, client: str = "http1", **kw: Any) -> Provider:
    return make_provider(model_config(kind, fake.url, **kw), environ=ENV, upstream_http=CLIENTS[client])


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("stream", [False, True])
async def test_huge_body_over_the_wire_is_cut_and_the_connection_dropped(fake: FakeUpstream, client: str,
                                                                         stream: bool) -> None:
    fake.script("m1", huge_bytes=32 * MiB)
    p = real("openai", fake, client, max_response_bytes=MiB, max_event_bytes=MiB)
    with pytest.raises(ResponseTooLargeError):
        await (drain(p, chat()) if stream else p.complete(chat()))
    await p.aclose()
    sent = await _sent_bytes(fake, "m1")
    # the fake counts what it wrote before it saw the disconnect: socket buffers, not 32 MiB
    assert sent < 16 * MiB, sent
    fake.clear()
    ok = real("openai", fake, client)
    assert (await ok.complete(chat())).data["choices"][0]["message"]["content"]  # the server is fine
    await ok.aclose()


@pytest.mark.parametrize(("kind", "client"), [("openai", "http1"), ("openai", "httpx"), ("ollama", "httpx"),
                                              ("anthropic", "httpx"), ("gemini", "httpx")])
async def test_comment_only_stream_is_cut_by_the_idle_timeout(fake: FakeUpstream, kind: str, client: str) -> None:
    # Before: `: ping` every 50 ms held the stream open although timeout_s = 2 (the read timeout
    # restarts on every byte). Now only data events restart the idle timer.
    keepalive = "\n" if kind == "ollama" else ": ping\n\n"
    fake.script("m1", raw_frames=[], tail_frame=keepalive, tail_every_ms=50)
    p = real(kind, fake, client, timeout_s=2.0, stream_idle_timeout_s=0.4, max_duration_s=30.0)
    with pytest.raises(UnavailableError) as info:
        await drain(p, chat())
    await p.aclose()
    if kind == "gemini":
        # Google's SDK parses a comment line as a JSON chunk: the stream fails at once, as malformed
        assert "malformed reply" in str(info.value), info.value
        return
    assert info.value.kind == "timeout" and "stream_idle_timeout_s" in str(info.value), info.value


def _drip_frame(kind: str) -> str:
    return {
        "openai": 'data: {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m1", '
                  '"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": null}]}\n\n',
        "ollama": '{"model": "m1", "message": {"role": "assistant", "content": "a"}, "done": false}\n',
        "anthropic": 'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                     '"delta": {"type": "text_delta", "text": "a"}}\n\n',
        "gemini": 'data: {"candidates": [{"content": {"parts": [{"text": "a"}], "role": "model"}, "index": 0}]}\n\n',
    }[kind]


@pytest.mark.parametrize(("kind", "client"), [("openai", "http1"), ("openai", "httpx"), ("ollama", "httpx"),
                                              ("anthropic", "httpx"), ("gemini", "httpx")])
async def test_slow_drip_is_cut_by_the_total_deadline(fake: FakeUpstream, kind: str, client: str) -> None:
    # A token every 50 ms restarts every per-read and idle timer; only the overall deadline ends it.
    start = ('event: message_start\ndata: {"type": "message_start", "message": {"id": "m", "model": "m1", '
             '"usage": {"input_tokens": 1}}}\n\n') if kind == "anthropic" else ""
    fake.script("m1", raw_frames=[start] if start else [], tail_frame=_drip_frame(kind), tail_every_ms=50)
    p = real(kind, fake, client, timeout_s=2.0, stream_idle_timeout_s=2.0, max_duration_s=0.8)
    got: list[dict[str, Any]] = []
    with pytest.raises(UpstreamTimeoutError) as info:
        async for c in p.stream(chat()):
            got.append(c)
    await p.aclose()
    assert "max_duration_s" in str(info.value)
    assert len(got) >= 2  # data did flow: the idle timer was not what fired


@pytest.mark.parametrize("client", CLIENTS)
async def test_complete_is_bounded_by_the_total_deadline(fake: FakeUpstream, client: str) -> None:
    fake.script("m1", latency_ms=3000)
    p = real("openai", fake, client, timeout_s=10.0, max_duration_s=0.3)
    with pytest.raises(UpstreamTimeoutError, match="max_duration_s"):
        await p.complete(chat())
    await p.aclose()


@pytest.mark.parametrize("client", CLIENTS)
async def test_malformed_json_in_sse_over_the_wire(fake: FakeUpstream, client: str) -> None:
    fake.script("m1", raw_frames=['data: {"choices": [{"delta": {"content": "a"}}]}\n\n', "data: {broken\n\n"])
    p = real("openai", fake, client)
    with pytest.raises(UnavailableError, match="malformed reply"):
        await drain(p, chat())
    await p.aclose()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", ["openai", "ollama", "anthropic"])
async def test_truncated_chunked_body(fake: FakeUpstream, client: str, kind: str) -> None:
    if kind != "openai" and client == "http1":
        pytest.skip("only the OpenAI-compatible provider uses the lean http1 client")
    raw = reply_bytes(kind, False).decode()
    fake.script("m1", raw_reply=raw, cut_after_bytes=len(raw) // 2)
    p = real(kind, fake, client)
    with pytest.raises(UnavailableError):
        await p.complete(chat())
    await p.aclose()


@pytest.mark.parametrize("client", CLIENTS)
async def test_bad_usage_over_the_wire_stream_succeeds_sanitised(fake: FakeUpstream, client: str) -> None:
    frames = [
        'data: {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m1", '
        '"choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}\n\n',
        'data: {"id": "c", "choices": [], "usage": {"prompt_tokens": "n/a", "completion_tokens": 1e308}}\n\n',
        "data: [DONE]\n\n"]
    fake.script("m1", raw_frames=frames)
    p = real("openai", fake, client)
    chunks = await drain(p, chat())
    await p.aclose()
    assert chunks[-1]["usage"] == {"prompt_tokens": 0, "completion_tokens": MAX_TOKEN_COUNT,
                                   "total_tokens": MAX_TOKEN_COUNT}
