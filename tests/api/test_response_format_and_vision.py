"""response_format is honoured by every provider or refused, never dropped; a pinned model without
vision gets a 400 instead of the image."""

from __future__ import annotations

import httpx
import orjson
import pytest

from wilton_core.config import ModelConfig
from wilton_core.errors import BadRequestError
from wilton_core.providers.anthropic import AnthropicProvider, to_anthropic_request

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
RF = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}
USER = {"role": "user", "content": "where?"}


def cfg() -> ModelConfig:
    return ModelConfig(id="claude-t", provider="anthropic", model="claude-x", tier="frontier", is_local=False,
                       base_url="http://anthropic.test")


def test_anthropic_json_schema_is_a_forced_tool() -> None:
    req = to_anthropic_request({"messages": [USER], "response_format": RF}, cfg(), stream=False)
    assert req["tools"] == [{"name": "place", "description": "Reply with JSON matching this schema.",
                             "input_schema": SCHEMA}]
    assert req["tool_choice"] == {"type": "tool", "name": "place"}
    req = to_anthropic_request({"messages": [USER], "response_format": {"type": "json_object"}}, cfg(), False)
    assert req["tools"][0]["input_schema"] == {"type": "object"}
    assert req["tool_choice"] == {"type": "tool", "name": "json_object"}


def test_anthropic_response_format_with_tools_is_refused_naming_the_model() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(BadRequestError) as ei:
        to_anthropic_request({"messages": [USER], "response_format": RF, "tools": [tool]}, cfg(), False)
    assert "claude-t" in ei.value.message and ei.value.status == 400


def _transport(reply: bytes, ctype: str = "application/json") -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=reply, headers={"content-type": ctype})
    return httpx.MockTransport(handler)


async def test_anthropic_json_reply_comes_back_as_content() -> None:
    reply = orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                          "content": [{"type": "tool_use", "id": "toolu_1", "name": "place",
                                       "input": {"city": "Lisbon"}}],
                          "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 7}})
    p = AnthropicProvider(cfg(), transport=_transport(reply), environ={})
    c = await p.complete({"messages": [USER], "response_format": RF})
    msg = c.data["choices"][0]["message"]
    assert orjson.loads(msg["content"]) == {"city": "Lisbon"} and "tool_calls" not in msg
    assert c.data["choices"][0]["finish_reason"] == "stop"
    await p.aclose()


async def test_anthropic_json_stream_comes_back_as_content() -> None:
    def ev(name: str, data: dict) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    sse = b"".join([
        ev("message_start", {"type": "message_start", "message": {"id": "m", "model": "claude-x",
                                                                   "usage": {"input_tokens": 3}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "place", "input": {}}}),
        ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "input_json_delta", "partial_json": '"Porto"}'}}),
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                             "usage": {"output_tokens": 4}}),
        ev("message_stop", {"type": "message_stop"}),
    ])
    p = AnthropicProvider(cfg(), transport=_transport(sse, "text/event-stream"), environ={})
    chunks = [c async for c in p.stream({"messages": [USER], "response_format": RF})]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert orjson.loads(text) == {"city": "Porto"}
    assert not any(c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    await p.aclose()


PNG_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
IMAGE_MSG = {"role": "user", "content": [{"type": "text", "text": "what"},
                                         {"type": "image_url", "image_url": {"url": PNG_URL}}]}


@pytest.mark.e2e
def test_pinned_model_without_vision_gets_400_not_the_image(stack):
    fake = stack["fake"]
    before = fake.stats()["by_model"].get("local-a", {})
    r = httpx.post(stack["base"] + "/v1/chat/completions", json={"model": "local-a", "messages": [IMAGE_MSG]})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "model_not_supported" and "local-a" in err["message"] and "vision" in err["message"]
    assert fake.stats()["by_model"].get("local-a", {}) == before  # nothing was forwarded
    r = httpx.post(stack["base"] + "/v1/chat/completions", json={"model": "local-vis", "messages": [IMAGE_MSG]})
    assert r.status_code == 200 and "[images:1]" in r.json()["choices"][0]["message"]["content"]


@pytest.mark.e2e
def test_json_schema_through_the_router_to_anthropic(stack):
    r = httpx.post(stack["base"] + "/v1/chat/completions", timeout=30, json={
        "model": "api-frontier", "messages": [{"role": "user", "content": "Lisbon"}], "response_format": RF})
    assert r.status_code == 200
    msg = r.json()["choices"][0]["message"]
    assert orjson.loads(msg["content"]) == {"city": "Lisbon"} and not msg.get("tool_calls")
    sent = stack["fake"].last_body("api-frontier")
    assert sent["tool_choice"] == {"type": "tool", "name": "place"}
    r = httpx.post(stack["base"] + "/v1/chat/completions", timeout=30, json={
        "model": "api-frontier", "messages": [{"role": "user", "content": "x"}], "response_format": RF,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})
    assert r.status_code == 400 and "api-frontier" in r.json()["error"]["message"]
