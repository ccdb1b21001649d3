"""errors_map as pure functions, then through a real provider on httpx.MockTransport."""

from __future__ import annotations

import email.utils
from typing import Any

import httpx
import pytest

from wilton_core.config import ModelConfig
from wilton_core.errors import (
    AuthError,
    BadRequestError,
    ContextTooLongError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from wilton_core.providers.anthropic import AnthropicProvider
from wilton_core.providers.errors_map import (
    error_from_exception,
    error_from_http,
    parse_retry_after,
    upstream_message,
)
from wilton_core.providers.openai_compat import OpenAICompatProvider

KEY = "sk-unit-test-key-987654321"
NOW = 1_700_000_000.0


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
    ({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
    ({"retry-after-ms": "250"}, 0.25),
    ({"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "1.5s"}, 360.0),
    ({"x-ratelimit-reset-tokens": "20ms"}, 0.02),
    ({"x-ratelimit-reset-requests": "1h2m3s"}, 3723.0),
    ({"Retry-After": "soon"}, None),
    ({"x-ratelimit-reset-requests": "garbage"}, None),
    ({}, None),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    got = parse_retry_after(headers, now=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(("status", "body", "cls"), [
    (429, {"error": {"message": "slow down"}}, RateLimitedError),
    (401, {"error": {"message": "bad key"}}, AuthError),
    (403, "forbidden", AuthError),
    (400, {"error": {"message": "x", "code": "context_length_exceeded"}}, ContextTooLongError),
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens."}}, ContextTooLongError),
    (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 300000 tokens"}},
     ContextTooLongError),
    (400, {"error": {"code": 400, "message": "The input token count (2000000) exceeds the maximum number of tokens allowed",
                     "status": "INVALID_ARGUMENT"}}, ContextTooLongError),
    (413, "request entity too large", ContextTooLongError),
    (422, {"error": "input too long for n_ctx"}, ContextTooLongError),
    (400, {"error": {"message": "temperature must be <= 2"}}, BadRequestError),
    (404, {"error": "model 'x' not found"}, BadRequestError),
    (422, {"detail": "bad field"}, BadRequestError),
    (500, "oops", UnavailableError),
    (502, b"<html>bad gateway</html>", UnavailableError),
    (503, {"error": {"message": "overloaded"}}, UnavailableError),
    (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, UnavailableError),
    (408, "", UnavailableError),
    (409, "", UnavailableError),
])
def test_status_classes(status: int, body: Any, cls: type[ProviderError]) -> None:
    err = error_from_http(status, {}, body, provider="openai", model="m")
    assert type(err) is cls and err.status == status and err.provider == "openai" and err.model == "m"


def test_rate_limit_carries_retry_after_and_other_classes_do_not_need_it() -> None:
    err = error_from_http(429, {"Retry-After": "3"}, b"", now=NOW)
    assert isinstance(err, RateLimitedError) and err.retry_after == 3.0 and err.retryable
    assert not error_from_http(400, {}, b"").retryable


def test_message_uses_upstream_text_and_drops_secrets() -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}}
    err = error_from_http(401, {}, body, provider="openai", model="gpt", secrets=(KEY, None))
    assert KEY not in str(err) and "Incorrect API key provided: ***" in str(err)
    assert "HTTP 401" in str(err)


def test_upstream_message_shapes() -> None:
    assert upstream_message(b'{"error": "model not found"}') == "model not found"
    assert upstream_message('[{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}]') == \
        "quota | 429 | RESOURCE_EXHAUSTED"
    assert upstream_message(b"x" * 1000) == "x" * 300


@pytest.mark.parametrize("exc", [
    httpx.ReadTimeout("read timed out"),
    httpx.ConnectTimeout("connect timed out"),
    httpx.ConnectError("connection refused"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.ReadError("reset by peer"),
    ValueError("Expecting value: line 1 column 1"),
    KeyError("choices"),
])
def test_transport_failures_are_unavailable(exc: Exception) -> None:
    err = error_from_exception(exc, provider="openai", model="m")
    assert isinstance(err, UnavailableError) and err.retryable and err.status is None


def test_provider_errors_pass_through_unchanged() -> None:
    e = AuthError("no")
    assert error_from_exception(e) is e


# -- through a real provider, faked at the transport ----------------------------------------------

def _openai(handler: Any, **kw: Any) -> OpenAICompatProvider:
    m = ModelConfig(id="oa", provider="openai", model="gpt-x", base_url="http://up.test/v1", tier="frontier",
                    is_local=False, api_key_env="OA_KEY", **kw)
    return OpenAICompatProvider(m, transport=httpx.MockTransport(handler), environ={"OA_KEY": KEY})


BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("status", "headers", "cls", "retry_after"), [
    (429, {"retry-after": "4"}, RateLimitedError, 4.0),
    (429, {"x-ratelimit-reset-requests": "2s"}, RateLimitedError, 2.0),
    (429, {}, RateLimitedError, None),
    (401, {}, AuthError, None),
    (500, {}, UnavailableError, None),
])
async def test_openai_provider_maps_statuses(status: int, headers: dict[str, str], cls: type[ProviderError],
                                             retry_after: float | None) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, json={"error": {"message": "nope"}})

    p = _openai(handler)
    with pytest.raises(cls) as ei:
        await p.complete(BODY)
    assert ei.value.retry_after == retry_after
    with pytest.raises(cls):
        async for _ in p.stream(BODY):
            pass
    await p.aclose()


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("t"), httpx.ConnectError("refused"),
                                 httpx.RemoteProtocolError("cut"), httpx.ReadError("reset")])
async def test_openai_provider_transport_errors(exc: Exception) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc

    p = _openai(handler)
    with pytest.raises(UnavailableError):
        await p.complete(BODY)
    await p.aclose()


async def test_openai_malformed_json_and_missing_choices() -> None:
    bodies = iter([b"<html>", b'{"object": "chat.completion"}', b'{"error": {"message": "late failure"}}'])

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=next(bodies))

    p = _openai(handler)
    for _ in range(3):
        with pytest.raises(UnavailableError):
            await p.complete(BODY)
    await p.aclose()


async def test_openai_request_shape_and_auth_header() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-x",
                                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hey"},
                                                      "finish_reason": "stop"}]})

    p = _openai(handler)
    c = await p.complete({**BODY, "stream": False, "response_format": {"type": "json_object"}, "n": 1, "user": "u1"})
    req = seen[0]
    assert req.url == "http://up.test/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    import json
    sent = json.loads(req.content)
    assert sent["model"] == "gpt-x" and sent["response_format"] == {"type": "json_object"} and sent["user"] == "u1"
    assert "stream" not in sent
    # no usage upstream: estimated (chars/4), never zero for a non-empty exchange
    assert c.usage.prompt_tokens == 1 and c.usage.completion_tokens == 1 and c.data["usage"]["total_tokens"] == 2
    await p.aclose()


async def test_openai_no_key_no_header() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"data": [{"id": "local-model"}]})

    m = ModelConfig(id="local", provider="openai", model="smollm2", base_url="http://127.0.0.1:1/v1",
                    tier="selfhost", is_local=True)
    p = OpenAICompatProvider(m, transport=httpx.MockTransport(handler), environ={})
    assert await p.list_models() == ["local-model"]
    assert "authorization" not in seen[0].headers
    await p.aclose()


async def test_openai_stream_without_upstream_usage_gets_an_estimate() -> None:
    sse = (b'data: {"id":"c9","object":"chat.completion.chunk","created":5,"model":"gpt-x","choices":[{"index":0,'
           b'"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}\n\n'
           b'data: {"id":"c9","object":"chat.completion.chunk","created":5,"model":"gpt-x","choices":[{"index":0,'
           b'"delta":{"content":" world!!"},"finish_reason":"stop"}]}\n\n'
           b"data: [DONE]\n\n")

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    p = _openai(handler)
    chunks = [c async for c in p.stream({"messages": [{"role": "user", "content": "12345678"}]})]
    assert [c["id"] for c in chunks] == ["c9"] * 3
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
    await p.aclose()


async def test_openai_stream_error_event_and_early_end() -> None:
    replies = iter([
        b'data: {"error": {"message": "rate limited mid-stream", "code": 429}}\n\n',
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
        b'"delta":{"content":"par"},"finish_reason":null}]}\n\n',
    ])

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=next(replies), headers={"content-type": "text/event-stream"})

    p = _openai(handler)
    with pytest.raises(RateLimitedError):
        async for _ in p.stream(BODY):
            pass
    got = []
    with pytest.raises(UnavailableError, match="ended before completion"):
        async for c in p.stream(BODY):
            got.append(c)
    assert len(got) == 1
    await p.aclose()


async def test_anthropic_error_event_mid_stream_is_classified() -> None:
    sse = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude",'
           b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
           b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n')

    def handler(req: httpx.Request) -> httpx.Response:
        assert req.headers["anthropic-version"] == "2023-06-01" and req.headers["x-api-key"] == KEY
        return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    m = ModelConfig(id="cl", provider="anthropic", model="claude", tier="frontier", is_local=False,
                    api_key_env="AN_KEY")
    p = AnthropicProvider(m, transport=httpx.MockTransport(handler), environ={"AN_KEY": KEY})
    got = []
    with pytest.raises(UnavailableError) as ei:
        async for c in p.stream(BODY):
            got.append(c)
    assert ei.value.status == 529 and len(got) == 1
    await p.aclose()
