"""The provider contract, run against every wire provider and the real fake upstream (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from wilton_core.errors import (
    AuthError,
    BadRequestError,
    ContextTooLongError,
    RateLimitedError,
    UnavailableError,
)
from wilton_core.providers.base import Provider
from wilton_core.testing.fake_upstream import FakeUpstream

KEY = "sk-test-not-a-real-key-0123456789"  # the fake server's key (conftest)
pytestmark = pytest.mark.parametrize("kind", ["openai", "ollama", "gemini", "anthropic"])

Make = Callable[..., Provider]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}


def chat(text: str = "hello there world", **kw: Any) -> dict[str, Any]:
    return {"model": "ignored", "messages": [{"role": "system", "content": "be brief"},
                                             {"role": "user", "content": text}], **kw}


async def collect(p: Provider, body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c async for c in p.stream(body)]


def check_stream_contract(chunks: list[dict[str, Any]]) -> tuple[str, str, dict[str, int]]:
    """Assert the chunk contract of providers/base.py; return (text, finish_reason, usage)."""
    assert len(chunks) >= 3
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    *body, last = chunks
    assert last["choices"] == [] and set(last["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert all(c["choices"] and "usage" not in c for c in body)
    finishes = [c["choices"][0]["finish_reason"] for c in body if c["choices"][0]["finish_reason"]]
    assert len(finishes) == 1 and body[-1]["choices"][0]["finish_reason"] == finishes[0]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in body)
    return text, finishes[0], last["usage"]


def tool_calls_of_stream(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls: dict[int, dict[str, Any]] = {}
    for c in chunks:
        for tc in (c["choices"][0]["delta"].get("tool_calls") or []) if c["choices"] else []:
            cur = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
            cur["id"] = tc.get("id") or cur["id"]
            cur["name"] += (tc.get("function") or {}).get("name") or ""
            cur["arguments"] += (tc.get("function") or {}).get("arguments") or ""
    return [calls[i] for i in sorted(calls)]


# -- happy paths -------------------------------------------------------------------------------------

async def test_complete(kind: str, make: Make, fake: FakeUpstream) -> None:
    p = make(kind, "m1")
    c = await p.complete(chat())
    assert c.data["object"] == "chat.completion"
    choice = c.data["choices"][0]
    assert choice["message"] == {**choice["message"], "role": "assistant", "content": "[m1] hello there world"}
    assert choice["finish_reason"] == "stop"
    assert c.usage.completion_tokens == 4 and c.usage.prompt_tokens > 0
    assert c.data["usage"] == c.usage.as_openai()
    assert fake.stats()["by_model"] == {"m1": 1}


async def test_stream_contract_and_usage(kind: str, make: Make, fake: FakeUpstream) -> None:
    p = make(kind, "m1")
    text, finish, usage = check_stream_contract(await collect(p, chat()))
    assert (text, finish) == ("[m1] hello there world", "stop")
    assert usage["completion_tokens"] == 4 and usage["total_tokens"] == usage["prompt_tokens"] + 4
    rec = fake.stats()["last"][-1]
    assert rec["stream"] is True
    if kind == "openai":  # asked upstream even though the client did not
        assert rec["body"]["stream_options"] == {"include_usage": True}


async def test_generation_params_pass_through(kind: str, make: Make, fake: FakeUpstream) -> None:
    p = make(kind, "m1")
    await p.complete(chat(temperature=0.3, top_p=0.9, max_tokens=50, stop=["END"], seed=7))
    body = fake.last_body("m1")
    if kind == "openai":
        assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "stop", "seed", "model")} == {
            "temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "stop": ["END"], "seed": 7, "model": "m1"}
        assert body["messages"] == chat()["messages"]
    elif kind == "ollama":
        assert body["options"] == {"temperature": 0.3, "top_p": 0.9, "num_predict": 50, "stop": ["END"], "seed": 7}
        assert body["messages"][0] == {"role": "system", "content": "be brief"} and body["stream"] is False
    elif kind == "gemini":
        assert body["generationConfig"] == {"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 50,
                                            "stopSequences": ["END"], "seed": 7}
        assert body["systemInstruction"]["parts"] == [{"text": "be brief"}]
        assert body["contents"] == [{"role": "user", "parts": [{"text": "hello there world"}]}]
    else:
        assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "stop_sequences", "system")} == {
            "temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "stop_sequences": ["END"], "system": "be brief"}
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello there world"}]}]


async def test_max_tokens_cut_gives_length(kind: str, make: Make) -> None:
    p = make(kind, "m1")
    c = await p.complete(chat("one two three four five", max_tokens=2))
    assert c.data["choices"][0]["finish_reason"] == "length"
    assert c.data["choices"][0]["message"]["content"] == "[m1] one"
    text, finish, _ = check_stream_contract(await collect(p, chat("one two three four five", max_tokens=2)))
    assert (text, finish) == ("[m1] one", "length")


async def test_tools_go_up_and_tool_calls_come_back(kind: str, make: Make, fake: FakeUpstream) -> None:
    p = make(kind, "m1")
    body = chat("weather in Paris", tools=[WEATHER_TOOL])
    c = await p.complete(body)
    choice = c.data["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"] and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "weather in Paris", "days": 1}

    sent = fake.last_body("m1")
    if kind in ("openai", "ollama"):
        assert sent["tools"] == [WEATHER_TOOL]
    elif kind == "gemini":
        (decl,) = sent["tools"][0]["functionDeclarations"]
        assert decl["name"] == "get_weather"
        assert (decl.get("parametersJsonSchema") or decl.get("parameters_json_schema")) == \
            WEATHER_TOOL["function"]["parameters"]
    else:
        assert sent["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                                  "input_schema": WEATHER_TOOL["function"]["parameters"]}]

    chunks = await collect(p, body)
    _, finish, _ = check_stream_contract(chunks)
    (scall,) = tool_calls_of_stream(chunks)
    assert finish == "tool_calls" and scall["id"] and scall["name"] == "get_weather"
    assert json.loads(scall["arguments"]) == {"city": "weather in Paris", "days": 1}


async def test_tool_result_round_trip(kind: str, make: Make, fake: FakeUpstream) -> None:
    p = make(kind, "m1")
    body = {"messages": [
        {"role": "user", "content": "weather in Paris"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ], "tools": [WEATHER_TOOL]}
    c = await p.complete(body)
    assert c.data["choices"][0]["message"]["content"] == "[m1] weather in Paris"
    sent = fake.last_body("m1")
    if kind == "openai":
        assert sent["messages"] == body["messages"]
    elif kind == "ollama":
        assert sent["messages"][1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
        assert sent["messages"][2] == {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"}
    elif kind == "gemini":
        assert sent["contents"][1]["role"] == "model"
        assert sent["contents"][1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}}
        assert sent["contents"][2]["parts"][0]["functionResponse"] == {"name": "get_weather", "response": {"temp": 21}}
    else:
        assert sent["messages"][1]["content"] == [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]
        assert sent["messages"][2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp": 21}'}]}


async def test_images(kind: str, make: Make, fake: FakeUpstream) -> None:
    p = make(kind, "m1")
    body = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]}
    c = await p.complete(body)
    assert c.data["choices"][0]["message"]["content"] == "[m1] what is this [images:1]"
    msg = fake.last_body("m1")
    if kind == "openai":
        assert msg["messages"] == body["messages"]
    elif kind == "ollama":
        assert msg["messages"] == [{"role": "user", "content": "what is this", "images": [PNG]}]
    elif kind == "gemini":
        blob = msg["contents"][0]["parts"][1]["inlineData"]  # the SDK sends mime_type un-camelCased
        assert blob["data"] == PNG and (blob.get("mimeType") or blob.get("mime_type")) == "image/png"
    else:
        assert msg["messages"][0]["content"][1] == {
            "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}


async def test_list_models(kind: str, make: Make) -> None:
    names = await make(kind, "m1").list_models()
    assert {"listed-a", "listed-b"} <= set(names)


async def test_key_sent_only_as_a_header(kind: str, make: Make, fake: FakeUpstream) -> None:
    await make(kind, "m1").complete(chat())
    rec = fake.stats()["last"][-1]
    assert rec["auth"] is True
    assert KEY not in json.dumps(rec)  # the fake redacts it; nothing else carried it


# -- failures ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_429_with_retry_after(kind: str, stream: bool, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", fail=[429], retry_after=2)
    p = make(kind, "m1")
    with pytest.raises(RateLimitedError) as ei:
        await (collect(p, chat()) if stream else p.complete(chat()))
    assert ei.value.retry_after == 2.0 and ei.value.status == 429 and ei.value.model == f"{kind}-m1"
    assert (await p.complete(chat())).data["choices"][0]["message"]["content"] == "[m1] hello there world"
    assert fake.stats()["by_model"]["m1"] == 2  # no hidden retries inside the provider (or the SDK)


async def test_429_without_retry_after(kind: str, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", fail=[429])
    with pytest.raises(RateLimitedError) as ei:
        await make(kind, "m1").complete(chat())
    assert ei.value.retry_after is None


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_500_is_unavailable(kind: str, stream: bool, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", status=500, times=1)
    p = make(kind, "m1")
    with pytest.raises(UnavailableError) as ei:
        await (collect(p, chat()) if stream else p.complete(chat()))
    assert ei.value.status == 500 and ei.value.retryable


async def test_wrong_key_is_auth_error_without_the_key(kind: str, make: Make, fake: FakeUpstream) -> None:
    wrong = "sk-wrong-key-abcdef123456"
    # The upstream echoes the key it got (some proxies do): it must not reach our message.
    fake.script("m1", fail=[401], error_message=f"Incorrect API key provided: {wrong}")
    with pytest.raises(AuthError) as ei:
        await make(kind, "m1", environ={"FAKE_API_KEY": wrong}).complete(chat())
    assert wrong not in str(ei.value) and KEY not in str(ei.value) and "Incorrect API key" in str(ei.value)


async def test_unscripted_wrong_key_rejected(kind: str, make: Make, fake: FakeUpstream) -> None:
    with pytest.raises(AuthError):
        await make(kind, "m1", environ={"FAKE_API_KEY": "sk-wrong-key-abcdef123456"}).complete(chat())


async def test_context_too_long(kind: str, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", fail=[400], error_message="This model's maximum context length is 8192 tokens")
    with pytest.raises(ContextTooLongError):
        await make(kind, "m1").complete(chat())


async def test_other_400_is_bad_request(kind: str, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", fail=[400], error_message="Invalid value for 'temperature'")
    with pytest.raises(BadRequestError):
        await make(kind, "m1").complete(chat())


async def test_timeout(kind: str, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", latency_ms=1500)
    with pytest.raises(UnavailableError, match=r"timed out|timeout|Timeout"):
        await make(kind, "m1", timeout_s=0.3).complete(chat())


async def test_stream_stall_times_out_from_the_iterator(kind: str, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", stall_after_chunks=2)
    got: list[dict[str, Any]] = []
    with pytest.raises(UnavailableError):
        async for c in make(kind, "m1", timeout_s=0.3).stream(chat()):
            got.append(c)
    assert got and not any(c["choices"] == [] for c in got)


async def test_stream_dies_midway(kind: str, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", die_after_chunks=2)
    got: list[dict[str, Any]] = []
    with pytest.raises(UnavailableError):
        async for c in make(kind, "m1").stream(chat("a b c d e f g h")):
            got.append(c)
    assert got, "the failure must surface from the iterator, after the first chunk"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_connection_reset(kind: str, stream: bool, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", reset=True, times=1)
    p = make(kind, "m1")
    with pytest.raises(UnavailableError):
        await (collect(p, chat()) if stream else p.complete(chat()))
    assert (await p.complete(chat())).data["choices"][0]["message"]["content"] == "[m1] hello there world"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_malformed_reply(kind: str, stream: bool, make: Make, fake: FakeUpstream) -> None:
    fake.script("m1", malformed=True)
    p = make(kind, "m1")
    with pytest.raises(UnavailableError):
        await (collect(p, chat()) if stream else p.complete(chat()))


async def test_connection_refused(kind: str, make: Make) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        base = f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai" else "")
        with pytest.raises(UnavailableError):
            await make(kind, "m1", base_url=base).complete(chat())
