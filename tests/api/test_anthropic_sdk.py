"""The official `anthropic` SDK, pointed at the router with only base_url changed, over fake
upstreams of every provider kind: text, system, stream, tools round trip, images, errors."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx
import pytest

from tests.api.conftest import CHAT_MODELS, ledger_row

pytestmark = pytest.mark.e2e

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def client(stack: dict[str, Any]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack["base"], api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_text_each_provider(client, stack, model):
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": "ping"}])
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.model == model
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == f"[{model}] ping"
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert raw.headers["x-wilton-model"] == model
    # the message id is the ledger's request id, and the SDK's request id too
    assert msg.id.startswith("msg_") and raw.headers["request-id"] == msg.id == raw.headers["x-request-id"]
    row = ledger_row(stack["db"], msg.id)
    assert row[1] == model and row[2] == "ok" and row[4] == msg.usage.output_tokens


def test_max_tokens_reaches_upstream_and_length_is_max_tokens(client, stack):
    # this SDK version no longer lists temperature/top_p as arguments; the API still takes them
    msg = client.messages.create(model="local-a", max_tokens=2, extra_body={"temperature": 0.2, "top_p": 0.9},
                                 stop_sequences=["END"], metadata={"user_id": "u-1"},
                                 messages=[{"role": "user", "content": "one two three four"}])
    assert msg.stop_reason == "max_tokens" and msg.content[0].text == "[local-a] one"
    body = stack["fake"].last_body("local-a")
    assert body["max_tokens"] == 2 and body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["stop"] == ["END"] and body["user"] == "u-1"


@pytest.mark.parametrize("system", ["Be terse.", [{"type": "text", "text": "Be"}, {"type": "text", "text": "terse."}]])
def test_system_prompt_string_or_blocks(client, stack, system):
    client.messages.create(model="local-a", max_tokens=20, system=system,
                           messages=[{"role": "user", "content": "hi"}])
    msgs = stack["fake"].last_body("local-a")["messages"]
    assert msgs[0]["role"] == "system" and msgs[0]["content"] in ("Be terse.", "Be\n\nterse.")
    assert msgs[1] == {"role": "user", "content": "hi"}


def test_auto_routes_like_chat(client):
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=20, messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["x-wilton-model"] in [*CHAT_MODELS, "local-vis"]
    assert raw.parse().content[0].text.startswith("[")


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_stream_each_provider(client, stack, model):
    with client.messages.stream(model=model, max_tokens=50,
                                messages=[{"role": "user", "content": "stream me"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == f"[{model}] stream me"
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.model == model
    row = ledger_row(stack["db"], final.id)
    assert row[1] == model and row[2] == "ok" and row[6] == 1


def test_raw_stream_event_order(client):
    events = [e.type for e in client.messages.create(
        model="local-a", max_tokens=50, stream=True, messages=[{"role": "user", "content": "a b"}])]
    assert events == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_tools_round_trip_each_provider(client, stack, model):
    first = client.messages.create(model=model, max_tokens=100, tools=[WEATHER],
                                   messages=[{"role": "user", "content": "Lisbon"}])
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Lisbon"}
    second = client.messages.create(model=model, max_tokens=100, tools=[WEATHER], messages=[
        {"role": "user", "content": "Lisbon"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C sunny"}]},
    ])
    # the fakes answer a tool result with text about the last thing the user said
    assert second.stop_reason == "end_turn" and second.content[0].text == f"[{model}] Lisbon"
    if model == "local-a":  # what the OpenAI-compatible upstream got: tool_calls and a tool message
        msgs = stack["fake"].last_body("local-a")["messages"]
        assert msgs[1]["tool_calls"][0]["id"] == use.id
        assert msgs[2] == {"role": "tool", "tool_call_id": use.id, "content": "21C sunny"}


@pytest.mark.parametrize("model", ["local-a", "api-frontier"])
def test_tool_use_streams_input_json_delta(client, model):
    with client.messages.stream(model=model, max_tokens=100, tools=[WEATHER],
                                tool_choice={"type": "tool", "name": "get_weather"},
                                messages=[{"role": "user", "content": "Porto"}]) as s:
        kinds = [e.delta.type for e in s if e.type == "content_block_delta"]
        final = s.get_final_message()
    assert kinds and set(kinds) == {"input_json_delta"}
    assert final.stop_reason == "tool_use" and final.content[-1].input == {"city": "Porto"}


def test_tool_choice_any_becomes_required(client, stack):
    client.messages.create(model="local-a", max_tokens=50, tools=[WEATHER], tool_choice={"type": "any"},
                           messages=[{"role": "user", "content": "x"}])
    assert stack["fake"].last_body("local-a")["tool_choice"] == "required"


@pytest.mark.parametrize("model", ["local-vis", "api-frontier", "api-edge"])
def test_images_base64_and_url(client, stack, model):
    msg = client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is this"}]}])
    assert msg.content[0].text == f"[{model}] what is this [images:1]"
    if model == "local-vis":
        part = stack["fake"].last_body("local-vis")["messages"][0]["content"][0]
        assert part == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
        client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "text", "text": "and this"}]}])
        part = stack["fake"].last_body("local-vis")["messages"][0]["content"][0]
        assert part == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


def test_count_tokens(client):
    n = client.messages.count_tokens(model="auto", system="sys", tools=[WEATHER],
                                     messages=[{"role": "user", "content": "hello " * 100}])
    assert n.input_tokens > 150


def test_errors_are_anthropic_shaped(client, stack):
    with pytest.raises(anthropic.NotFoundError) as ei:
        client.messages.create(model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["type"] == "error" and ei.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as ei2:
        client.messages.create(model="local-a", max_tokens=10, messages=[{"role": "user", "content": "x"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert ei2.value.body["error"]["type"] == "invalid_request_error" and "web_search" in ei2.value.message
    r = httpx.post(stack["base"] + "/v1/messages", json={"model": "local-a",
                                                         "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json() == {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: Field required"}}
    r = httpx.post(stack["base"] + "/v1/messages", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(stack["base"] + "/v1/messages")
    assert r.status_code == 405 and r.json()["type"] == "error"


def test_no_healthy_model_is_overloaded_529(client, stack):
    fake = stack["fake"]
    fake.script("local-b", fail=[500, 500, 500, 500])
    try:
        with pytest.raises(anthropic.APIStatusError) as ei:
            client.messages.create(model="local-b", max_tokens=10, messages=[{"role": "user", "content": "x"}])
        assert ei.value.status_code == 529 and ei.value.body["error"]["type"] == "overloaded_error"
    finally:
        fake.clear()


def test_stream_dying_midway_is_an_error_event(client, stack):
    fake = stack["fake"]
    fake.script("api-edge", die_after_chunks=2)
    try:
        with pytest.raises(anthropic.APIStatusError), client.messages.stream(
                model="api-edge", max_tokens=100, messages=[{"role": "user", "content": "a long answer please"}]) as s:
            for _ in s:
                pass
    finally:
        fake.clear()


def test_client_request_id_is_honoured(stack):
    r = httpx.post(stack["base"] + "/v1/messages", headers={"x-request-id": "trace-42.abc"},
                   json={"model": "local-a", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200 and r.json()["id"] == "trace-42.abc" == r.headers["x-request-id"]
    assert ledger_row(stack["db"], "trace-42.abc")[1] == "local-a"


def test_image_to_a_pinned_text_only_model_is_400(client):
    with pytest.raises(anthropic.BadRequestError) as ei:
        client.messages.create(model="local-a", max_tokens=20, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "what is this"}]}])
    assert ei.value.body["error"]["type"] == "invalid_request_error" and "local-a" in ei.value.message


def test_count_tokens_unknown_model_is_not_found(client):
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="claude-nope", messages=[{"role": "user", "content": "x"}])
