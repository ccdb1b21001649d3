"""The official `openai` SDK's client.responses.create against the router (stateless subset),
streaming and not, over fake upstreams of every provider kind."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.api.conftest import CHAT_MODELS, ledger_row

pytestmark = pytest.mark.e2e

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
PNG_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def client(stack: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack["base"] + "/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_text_each_provider(client, stack, model):
    raw = client.responses.with_raw_response.create(model=model, input="ping")
    r = raw.parse()
    assert r.object == "response" and r.status == "completed" and r.model == model
    assert r.output_text == f"[{model}] ping"
    assert r.output[0].type == "message" and r.output[0].content[0].type == "output_text"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.id.startswith("resp_") and r.id == raw.headers["x-request-id"]
    assert raw.headers["x-wilton-model"] == model
    row = ledger_row(stack["db"], r.id)
    assert row[1] == model and row[2] == "ok"


def test_instructions_and_message_list(client, stack):
    r = client.responses.create(model="local-a", instructions="Be terse.", max_output_tokens=50, temperature=0.3,
                                input=[{"role": "user", "content": "first"},
                                       {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
                                       {"role": "user", "content": [{"type": "input_text", "text": "second"}]}])
    assert r.output_text == "[local-a] second"
    body = stack["fake"].last_body("local-a")
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "first"},
                                {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]
    assert body["max_tokens"] == 50 and body["temperature"] == 0.3


def test_max_output_tokens_makes_it_incomplete(client):
    r = client.responses.create(model="local-b", input="one two three four", max_output_tokens=2)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_stream_each_provider(client, stack, model):
    events = list(client.responses.create(model=model, input="stream me", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-5:] == ["response.output_text.delta", "response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == f"[{model}] stream me"
    done = events[-1].response
    assert done.output_text == text and done.status == "completed" and done.usage.output_tokens > 0
    assert ledger_row(stack["db"], done.id)[6] == 1


def test_sdk_stream_helper(client):
    with client.responses.stream(model="local-a", input="helper") as s:
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        final = s.get_final_response()
    assert text == "[local-a] helper" == final.output_text


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_function_call_round_trip(client, model):
    first = client.responses.create(model=model, input="Lisbon", tools=[WEATHER])
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "get_weather" and call.arguments == '{"city":"Lisbon"}' and call.call_id
    second = client.responses.create(model=model, tools=[WEATHER], input=[
        {"role": "user", "content": "Lisbon"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "21C sunny"},
    ])
    assert second.output_text == f"[{model}] Lisbon"


def test_function_call_streams(client):
    events = list(client.responses.create(model="local-a", input="Porto", tools=[WEATHER], stream=True,
                                          tool_choice={"type": "function", "name": "get_weather"}))
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == '{"city":"Porto"}'
    assert events[-1].response.output[0].type == "function_call"


def test_image_input(client):
    r = client.responses.create(model="local-vis", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what"}, {"type": "input_image", "image_url": PNG_URL}]}])
    assert r.output_text == "[local-vis] what [images:1]"


def test_previous_response_id_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.responses.create(model="local-a", input="x", previous_response_id="resp_123")
    assert ei.value.body["param"] == "previous_response_id" and "stores no" in ei.value.message


def test_builtin_tools_refused(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.responses.create(model="local-a", input="x", tools=[{"type": "web_search"}])
    assert ei.value.body["param"] == "tools[0].type"


def test_errors_are_openai_shaped(client, stack):
    with pytest.raises(openai.NotFoundError) as ei:
        client.responses.create(model="nope", input="x")
    assert ei.value.body["code"] == "model_not_found"
    r = httpx.post(stack["base"] + "/v1/responses", json={"model": "local-a"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


def test_stream_dying_midway_ends_with_response_failed(client, stack):
    fake = stack["fake"]
    fake.script("api-edge", die_after_chunks=2)
    try:
        events = list(client.responses.create(model="api-edge", input="a long answer please", stream=True))
    finally:
        fake.clear()
    assert events[-1].type == "response.failed" and events[-1].response.status == "failed"
    assert events[-1].response.error.code == "server_error"
