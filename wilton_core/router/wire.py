"""The OpenAI wire format on the gateway side: request validation, error bodies, SSE framing.

Validation is hand-written rather than a pydantic model on the hot path: it checks exactly what
would otherwise turn into an upstream 400 or a server 500, and passes every other field through
untouched (providers forward what they support).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from wilton_core.errors import RequestError

__all__ = [
    "MAX_JSON_DEPTH",
    "ROLES",
    "error_body",
    "json_depth_exceeds",
    "sse_event",
    "validate_chat_request",
]

# Deepest nesting accepted anywhere in a request. The JSON encoder every provider uses stops at
# 254 levels; a deeper passed-through field (metadata, tool parameters) used to fail inside every
# provider and open every breaker. 64 is far beyond any real schema and cheap to check.
MAX_JSON_DEPTH = 64
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
# the content part types of OpenAI's chat messages; anything else is refused here, not by a provider
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_NUMERIC = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
_POSITIVE_INT = ("max_tokens", "max_completion_tokens", "n")


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def sse_event(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _bad(message: str, param: str | None, code: str = "invalid_value") -> RequestError:
    return RequestError(message, param=param, code=code)


def json_depth_exceeds(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `obj` (decoded JSON) nests containers deeper than `limit`. Iterative: a hostile
    body cannot exhaust the stack, and the walk stops at the first level past the limit.

    Runs on every request body and every upstream reply, so it is written for speed: exact type
    checks (decoded JSON holds plain dicts and lists) and no generator per container (3x faster
    than isinstance with a union and `extend(genexpr)` on a chat body)."""
    if type(obj) is not dict and type(obj) is not list:
        return False
    level: list[Any] = [obj]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        nxt: list[Any] = []
        push = nxt.append
        for o in level:
            for v in (o.values() if type(o) is dict else o):
                t = type(v)
                if t is dict or t is list:
                    push(v)
        level = nxt
    return False


def _check_tool_calls(i: int, calls: Any) -> None:
    where = f"messages[{i}].tool_calls"
    if not isinstance(calls, list):
        raise _bad(f"'{where}' must be an array of tool calls.", where, "invalid_type")
    for j, c in enumerate(calls):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(c, dict) or not isinstance(c.get("id"), str) or c.get("type", "function") != "function" \
                or not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"] \
                or not isinstance(fn.get("arguments", ""), str):
            raise _bad(f"'{where}[{j}]' must be {{'id': str, 'type': 'function', 'function': "
                       "{'name': str, 'arguments': str}}.", f"{where}[{j}]", "invalid_type")


def _check_content(i: int, msg: dict[str, Any]) -> None:
    role = msg["role"]
    content = msg.get("content")
    where = f"messages[{i}].content"
    if content is None:
        if role == "assistant" and (msg.get("tool_calls") or msg.get("function_call")):
            return
        raise _bad(f"'{where}' is required for role '{role}'.", where, "missing_required_parameter")
    if isinstance(content, str):
        if role in ("user", "system", "developer") and not content.strip():
            raise _bad(f"'{where}' must not be empty.", where, "empty_content")
        return
    if isinstance(content, list):
        if not content and role != "assistant":
            raise _bad(f"'{where}' must not be an empty array.", where, "empty_content")
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _bad(f"'{where}[{j}]' must be an object with a string 'type'.", f"{where}[{j}]",
                           "invalid_type")
            if part["type"] not in PART_TYPES:
                raise _bad(f"'{where}[{j}].type' must be one of {sorted(PART_TYPES)}.", f"{where}[{j}].type")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise _bad(f"'{where}[{j}].text' must be a string.", f"{where}[{j}].text", "invalid_type")
            if part["type"] == "image_url":
                iu = part.get("image_url")
                url = iu.get("url") if isinstance(iu, dict) else iu
                if not isinstance(url, str) or not url:
                    raise _bad(f"'{where}[{j}].image_url.url' must be a non-empty string.",
                               f"{where}[{j}].image_url", "invalid_type")
        return
    raise _bad(f"'{where}' must be a string or an array of content parts.", where, "invalid_type")


def validate_chat_request(body: Any) -> dict[str, Any]:
    """Return the body if it is a valid chat-completions request, else raise RequestError."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_type")
    model = body.get("model", "auto")
    if model is not None and not isinstance(model, str):
        raise _bad("'model' must be a string.", "model", "invalid_type")
    messages = body.get("messages")
    if messages is None:
        raise _bad("'messages' is a required property.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad("'messages' must be an array.", "messages", "invalid_type")
    if not messages:
        raise _bad("'messages' must contain at least one message.", "messages", "empty_array")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise _bad(f"'messages[{i}]' must be an object.", f"messages[{i}]", "invalid_type")
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise _bad(f"'messages[{i}].role' must be one of {sorted(ROLES)}.", f"messages[{i}].role")
        if msg.get("tool_calls") is not None:
            if role != "assistant":
                raise _bad(f"'messages[{i}].tool_calls' is only allowed on assistant messages.",
                           f"messages[{i}].tool_calls")
            _check_tool_calls(i, msg["tool_calls"])
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            raise _bad(f"'messages[{i}].tool_call_id' (a string) is required for role 'tool'.",
                       f"messages[{i}].tool_call_id", "missing_required_parameter")
        name = msg.get("name")
        if name is not None and not isinstance(name, str):
            raise _bad(f"'messages[{i}].name' must be a string.", f"messages[{i}].name", "invalid_type")
        _check_content(i, msg)
    if json_depth_exceeds(body):
        raise _bad(f"The request nests objects or arrays deeper than {MAX_JSON_DEPTH} levels.", None,
                   "nesting_too_deep")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _bad("'stream' must be a boolean.", "stream", "invalid_type")
    for key, (lo, hi) in _NUMERIC.items():
        v = body.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
            raise _bad(f"'{key}' must be a number between {lo} and {hi}.", key)
    for key in _POSITIVE_INT:
        v = body.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _bad(f"'{key}' must be a positive integer.", key)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
        isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4
    ):
        raise _bad("'stop' must be a string or an array of up to 4 strings.", "stop", "invalid_type")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise _bad("'tools' must be an array of objects.", "tools", "invalid_type")
        for i, t in enumerate(tools):
            fn = t.get("function")
            if t.get("type", "function") != "function" or not isinstance(fn, dict) or not isinstance(
                fn.get("name"), str
            ) or not fn["name"]:
                raise _bad(f"'tools[{i}]' must be {{'type': 'function', 'function': {{'name': ...}}}}.",
                           f"tools[{i}]", "invalid_type")
            if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
                raise _bad(f"'tools[{i}].function.parameters' must be a JSON Schema object.",
                           f"tools[{i}].function.parameters", "invalid_type")
            if fn.get("description") is not None and not isinstance(fn["description"], str):
                raise _bad(f"'tools[{i}].function.description' must be a string.",
                           f"tools[{i}].function.description", "invalid_type")
    tc = body.get("tool_choice")
    if tc is not None and not (tc in _TOOL_CHOICES if isinstance(tc, str) else (
        isinstance(tc, dict) and isinstance(tc.get("function"), dict)
        and isinstance(tc["function"].get("name"), str)
    )):
        raise _bad("'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', "
                   "'function': {'name': ...}}.", "tool_choice", "invalid_type")
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in RESPONSE_FORMATS:
            raise _bad(f"'response_format.type' must be one of {sorted(RESPONSE_FORMATS)}.",
                       "response_format.type")
        if rf["type"] == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict) or not isinstance(js.get("name"), str) or (
                js.get("schema") is not None and not isinstance(js["schema"], dict)
            ):
                raise _bad("'response_format.json_schema' must be an object with a 'name' and a 'schema' "
                           "object.", "response_format.json_schema", "invalid_type")
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise _bad("'stream_options' must be an object.", "stream_options", "invalid_type")
    return body
