import pytest

from wilton_core.core.messages import has_images, prompt_chars
from wilton_core.errors import RequestError
from wilton_core.router.wire import validate_chat_request

OK = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ([], None, "invalid_type"),
        ({}, "messages", "missing_required_parameter"),
        ({"messages": "hi"}, "messages", "invalid_type"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [1]}, "messages[0]", "invalid_type"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content", "empty_content"),
        ({"messages": [{"role": "user", "content": "   "}]}, "messages[0].content", "empty_content"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content", "empty_content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text",
         "invalid_type"),
        ({**OK, "model": 3}, "model", "invalid_type"),
        ({**OK, "stream": "yes"}, "stream", "invalid_type"),
        ({**OK, "temperature": 9}, "temperature", "invalid_value"),
        ({**OK, "temperature": float("nan")}, "temperature", "invalid_value"),
        ({**OK, "temperature": True}, "temperature", "invalid_value"),
        ({**OK, "max_tokens": 0}, "max_tokens", "invalid_value"),
        ({**OK, "max_tokens": 1.5}, "max_tokens", "invalid_value"),
        ({**OK, "stop": [1]}, "stop", "invalid_type"),
        ({**OK, "tools": [{"type": "function"}]}, "tools[0]", "invalid_type"),
        ({**OK, "response_format": "json"}, "response_format.type", "invalid_value"),
    ],
)
def test_invalid_requests_name_the_param(body, param, code):
    with pytest.raises(RequestError) as ei:
        validate_chat_request(body)
    assert ei.value.param == param
    assert ei.value.code == code
    assert ei.value.status == 400


def test_valid_requests_pass_through_unchanged():
    body = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is this"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                    "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        "temperature": 0.2, "max_tokens": 10, "stop": ["\n"], "stream": False,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"}, "seed": 7,
    }
    assert validate_chat_request(body) is body
    assert has_images(body["messages"])
    assert prompt_chars(body["messages"]) == len("be brief") + len("what is this") + len("42")
