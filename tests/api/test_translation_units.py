"""The pure translators, case by case: Anthropic Messages <-> chat, Responses <-> chat, streams."""

from __future__ import annotations

import orjson
import pytest

from wilton_core.errors import RequestError
from wilton_core.router import anthropic_wire as aw
from wilton_core.router import responses_wire as rw
from wilton_core.router.endpoints import ApiError


def _events(raw: list[bytes]) -> list[tuple[str, dict]]:
    out = []
    for frame in raw:
        head, data = frame.decode().rstrip("\n").split("\n")
        out.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


def chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


# -- Anthropic ----------------------------------------------------------------------------------

def test_tool_results_images_and_errors_become_tool_and_user_messages() -> None:
    body = aw.validate_messages_request({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                          {"type": "text", "text": "calling"},
                                          {"type": "tool_use", "id": "t1", "name": "a", "input": {"x": 1}},
                                          {"type": "tool_use", "id": "t2", "name": "b", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
            {"type": "tool_result", "tool_use_id": "t2", "is_error": True, "content": [
                {"type": "text", "text": "boom"},
                {"type": "image", "source": {"type": "url", "url": "https://e.x/i.png"}}]},
            {"type": "text", "text": "now?"}]},
    ], "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "tools": [{"name": "a", "input_schema": {"type": "object"}}, {"name": "b", "input_schema": {}}]})
    chat = aw.to_chat(body)
    m = chat["messages"]
    assert m[1] == {"role": "assistant", "content": "calling", "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
        {"id": "t2", "type": "function", "function": {"name": "b", "arguments": "{}"}}]}
    assert m[2] == {"role": "tool", "tool_call_id": "t1", "content": "ok"}
    assert m[3] == {"role": "tool", "tool_call_id": "t2", "content": "[tool error] boom"}
    # the tool result's image joins the user message, in the turn's order
    assert m[4] == {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.x/i.png"}},
                                                {"type": "text", "text": "now?"}]}
    assert chat["tool_choice"] == "auto" and chat["parallel_tool_calls"] is False


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document"}]}]},
     "messages.0.content.0.type"),
    ({"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]},
     "temperature"),
    ({"model": "m", "max_tokens": 5, "stop_sequences": ["a"] * 5, "messages": [{"role": "user", "content": "x"}]},
     "stop_sequences"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "x"}}]}]},
     "messages.0.content.0.source.media_type"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
     "messages"),
])
def test_anthropic_refusals_name_the_field(body: dict, param: str) -> None:
    with pytest.raises(RequestError) as ei:
        aw.to_chat(aw.validate_messages_request(body))
    assert ei.value.param == param and ei.value.status == 400


def test_top_k_and_thinking_are_accepted_and_not_forwarded() -> None:
    chat = aw.to_chat(aw.validate_messages_request({"model": "m", "max_tokens": 5, "top_k": 40, "thinking": {
        "type": "enabled", "budget_tokens": 1024}, "messages": [{"role": "user", "content": "x"}]}))
    assert "top_k" not in chat and "thinking" not in chat


def test_error_json_maps_statuses() -> None:
    assert aw.error_json(ApiError(503, "down", "service_unavailable", "no_healthy_model")) == (
        529, b'{"type":"error","error":{"type":"overloaded_error","message":"down"}}')
    assert aw.error_json(ApiError(429, "slow"))[0] == 429
    assert orjson.loads(aw.error_json(ApiError(413, "big"))[1])["error"]["type"] == "request_too_large"


def test_from_chat_broken_tool_arguments_are_kept() -> None:
    msg = aw.from_chat({"id": "msg_1", "model": "m", "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                        "choices": [{"finish_reason": "tool_calls", "message": {"content": None, "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{not json"}}]}}]})
    assert msg["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {"_raw_arguments": "{not json"}}]
    assert msg["stop_reason"] == "tool_use" and msg["usage"] == {"input_tokens": 3, "output_tokens": 4}


def test_messages_stream_text_then_two_tools() -> None:
    s = aw.MessagesStream("msg_1", "m", 10)
    out = []
    for c in (chunk({"role": "assistant", "content": ""}), chunk({"content": "Let me"}),
              chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "a", "arguments": ""}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
              chunk({"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "b", "arguments": "{}"}}]}),
              chunk({}, "tool_calls"), {"id": "x", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9}}):
        out += s.feed(c)
    out += s.finish()
    ev = _events(out)
    assert [e for e, _ in ev] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    starts = [d["content_block"] for e, d in ev if e == "content_block_start"]
    assert starts[1] == {"type": "tool_use", "id": "c0", "name": "a", "input": {}} and starts[2]["name"] == "b"
    assert [d["index"] for e, d in ev if e == "content_block_stop"] == [0, 1, 2]
    assert ev[-2][1]["delta"]["stop_reason"] == "tool_use" and ev[-2][1]["usage"] == {"output_tokens": 9}


def test_messages_stream_empty_reply_is_one_empty_text_block() -> None:
    s = aw.MessagesStream("msg_1", "m", 1)
    ev = _events([*s.feed(chunk({}, "stop")), *s.finish()])
    assert [e for e, _ in ev] == ["message_start", "content_block_start", "ping", "content_block_stop",
                                  "message_delta", "message_stop"]


# -- Responses ----------------------------------------------------------------------------------

def test_responses_items_to_chat() -> None:
    body = rw.validate_responses_request({"model": "m", "instructions": "be nice", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "a"},
                                     {"type": "input_image", "image_url": "https://e.x/i.png", "detail": "low"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "1"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "2"}]},
        {"type": "reasoning", "summary": []},
    ], "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
        "max_output_tokens": 7})
    chat = rw.to_chat(body)
    m = chat["messages"]
    assert m[0] == {"role": "system", "content": "be nice"}
    assert m[1]["content"][1] == {"type": "image_url", "image_url": {"url": "https://e.x/i.png", "detail": "low"}}
    assert m[2]["role"] == "assistant" and m[2]["content"] == "calling" and [
        c["id"] for c in m[2]["tool_calls"]] == ["c1", "c2"]
    assert m[3:] == [{"role": "tool", "tool_call_id": "c1", "content": "1"},
                     {"role": "tool", "tool_call_id": "c2", "content": "2"}]
    assert chat["response_format"]["json_schema"]["name"] == "out" and chat["max_tokens"] == 7


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"input": "x", "conversation": "c"}, "conversation"),
    ({"input": "x", "background": True}, "background"),
    ({"input": ""}, "input"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url"),
    ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
])
def test_responses_refusals(body: dict, param: str) -> None:
    with pytest.raises(RequestError) as ei:
        rw.validate_responses_request(body)
    assert ei.value.param == param


def test_responses_stream_text_and_call_sequence_numbers() -> None:
    s = rw.ResponsesStream({"input": "x"}, "resp_1", "m", 1)
    out = []
    for c in (chunk({"role": "assistant", "content": ""}), chunk({"content": "hi"}),
              chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "f", "arguments": "{}"}}]}),
              chunk({}, "tool_calls"), {"id": "x", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}):
        out += s.feed(c)
    out += s.finish()
    ev = _events(out)
    assert [d["sequence_number"] for _, d in ev] == list(range(len(ev)))
    assert [e for e, _ in ev] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    final = ev[-1][1]["response"]
    assert [o["type"] for o in final["output"]] == ["message", "function_call"]
    assert final["usage"]["total_tokens"] == 5 and final["status"] == "completed"
