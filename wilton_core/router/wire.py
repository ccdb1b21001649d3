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
    "ROLES",
    "error_body",
    "has_images",
    "prompt_chars",
    "sse_event",
    "validate_chat_request",
]

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
        _check_content(i, msg)
    if "stream" in body and not isinstance(body["stream"], bool):
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
            ):
                raise _bad(f"'tools[{i}]' must be {{'type': 'function', 'function': {{'name': ...}}}}.",
                           f"tools[{i}]", "invalid_type")
    rf = body.get("response_format")
    if rf is not None and not (isinstance(rf, dict) and isinstance(rf.get("type"), str)):
        raise _bad("'response_format' must be an object with a 'type'.", "response_format", "invalid_type")
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise _bad("'stream_options' must be an object.", "stream_options", "invalid_type")
    return body


def has_images(messages: list[dict[str, Any]]) -> bool:
    for m in messages:
        c = m.get("content")
        if isinstance(c, list):
            for p in c:
                if isinstance(p, dict) and p.get("type") in ("image_url", "input_image", "image"):
                    return True
    return False


def prompt_chars(messages: list[dict[str, Any]]) -> int:
    n = 0
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            n += len(c)
        elif isinstance(c, list):
            for p in c:
                if isinstance(p, dict) and isinstance(p.get("text"), str):
                    n += len(p["text"])
    return n
