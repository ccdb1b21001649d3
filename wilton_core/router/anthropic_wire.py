"""Anthropic's Messages API on the gateway side: validate, translate to/from OpenAI chat, stream.

Pure functions and one small stream translator; no I/O. The router speaks OpenAI chat
completions internally (every provider does at its boundary), so a Messages request becomes a
chat body, runs the same routing path, and its result or chunks are turned back into
Anthropic's wire format: https://docs.anthropic.com/en/api/messages and .../messages-streaming.

Decided, and documented in docs/api-anthropic.md:
- `top_k` is validated and not forwarded: the chat body every provider receives has no such
  field (OpenAI's API rejects one) and it only narrows sampling further than top_p.
- `thinking` is accepted and not forwarded: the reply simply has no thinking blocks, which a
  Messages client must handle anyway (thinking is never guaranteed). Thinking blocks in earlier
  assistant turns are dropped for the same reason (only Claude can verify their signatures).
- Server tools (web search, code execution, bash...) and documents/PDF blocks are refused with
  400: no provider behind the router runs them.
- `stop_sequence` in a reply is always null: OpenAI's finish reason does not say which stop
  string matched, so a stop-sequence stop is reported as `end_turn`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import orjson

from wilton_core.core.messages import estimate_tokens
from wilton_core.errors import RequestError
from wilton_core.router.endpoints import ApiError
from wilton_core.router.wire import MAX_JSON_DEPTH, json_depth_exceeds

__all__ = [
    "ERROR_TYPES",
    "MessagesStream",
    "error_json",
    "estimate_input_tokens",
    "from_chat",
    "sse",
    "to_chat",
    "validate_messages_request",
]

# Anthropic's documented error types by status; 503 (no healthy model) is their 529 "overloaded".
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 503: "overloaded_error",
               504: "timeout_error", 529: "overloaded_error"}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
         "content_filter": "refusal"}
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_USER_BLOCKS = frozenset({"text", "image", "tool_result"})
_ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
MAX_STOP_SEQUENCES = 4  # what the chat body (and so every provider behind it) accepts


def error_json(err: ApiError) -> tuple[int, bytes]:
    """(status, body) of an error in Anthropic's shape. A 503 is sent as Anthropic's 529."""
    status = 529 if err.status == 503 and err.code == "no_healthy_model" else err.status
    type_ = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return status, orjson.dumps({"type": "error", "error": {"type": type_, "message": err.message}})


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> RequestError:
    return RequestError(message, param=param, code=code)


def _need_str(v: Any, where: str, *, empty_ok: bool = True) -> str:
    if not isinstance(v, str) or (not empty_ok and not v):
        raise _bad(f"{where}: {'a non-empty' if not empty_ok else 'a'} string is required.", where, "invalid_type")
    return v


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> None:
    v = body.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise _bad(f"{key}: must be a number between {lo} and {hi}.", key)


def _check_image(b: dict[str, Any], where: str) -> None:
    src = b.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{where}.source: an object is required.", f"{where}.source", "invalid_type")
    kind = src.get("type")
    if kind == "base64":
        if src.get("media_type") not in _IMAGE_TYPES:
            raise _bad(f"{where}.source.media_type: must be one of {sorted(_IMAGE_TYPES)}.",
                       f"{where}.source.media_type")
        _need_str(src.get("data"), f"{where}.source.data", empty_ok=False)
    elif kind == "url":
        url = _need_str(src.get("url"), f"{where}.source.url", empty_ok=False)
        if not url.startswith(("http://", "https://")):
            raise _bad(f"{where}.source.url: must be an http(s) URL.", f"{where}.source.url")
    else:
        raise _bad(f"{where}.source.type: must be 'base64' or 'url' (files are not supported).",
                   f"{where}.source.type")


def _check_blocks(content: Any, where: str, allowed: frozenset[str]) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"{where}: must be a string or an array of content blocks.", where, "invalid_type")
    for j, b in enumerate(content):
        w = f"{where}.{j}"
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise _bad(f"{w}: must be an object with a string 'type'.", w, "invalid_type")
        t = b["type"]
        if t not in allowed:
            raise _bad(f"{w}.type: '{t[:40]}' is not supported here (supported: {', '.join(sorted(allowed))}).",
                       f"{w}.type")
        if t == "text":
            _need_str(b.get("text"), f"{w}.text")
        elif t == "image":
            _check_image(b, w)
        elif t == "tool_use":
            _need_str(b.get("id"), f"{w}.id", empty_ok=False)
            _need_str(b.get("name"), f"{w}.name", empty_ok=False)
            if not isinstance(b.get("input"), dict):
                raise _bad(f"{w}.input: an object is required.", f"{w}.input", "invalid_type")
        elif t == "tool_result":
            _need_str(b.get("tool_use_id"), f"{w}.tool_use_id", empty_ok=False)
            c = b.get("content")
            if c is not None:
                _check_blocks(c, f"{w}.content", frozenset({"text", "image"}))
            if b.get("is_error") is not None and not isinstance(b["is_error"], bool):
                raise _bad(f"{w}.is_error: a boolean is required.", f"{w}.is_error", "invalid_type")


def validate_messages_request(body: Any, *, count_only: bool = False) -> dict[str, Any]:
    """The body if it is a Messages request we can serve, else RequestError (rendered as a 400).

    `count_only`: the count_tokens shape (no max_tokens, no sampling parameters needed).
    """
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_type")
    if json_depth_exceeds(body):
        raise _bad(f"The request nests objects or arrays deeper than {MAX_JSON_DEPTH} levels.", None,
                   "nesting_too_deep")
    model = body.get("model", "auto")
    if not isinstance(model, str):
        raise _bad("model: a string is required.", "model", "invalid_type")
    if not count_only:
        mt = body.get("max_tokens")
        if mt is None:
            raise _bad("max_tokens: Field required", "max_tokens", "missing_required_parameter")
        if isinstance(mt, bool) or not isinstance(mt, int) or mt < 1:
            raise _bad("max_tokens: must be a positive integer.", "max_tokens")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages: a non-empty array is required.", "messages", "missing_required_parameter")
    for i, m in enumerate(msgs):
        w = f"messages.{i}"
        if not isinstance(m, dict):
            raise _bad(f"{w}: must be an object.", w, "invalid_type")
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise _bad(f"{w}.role: must be 'user' or 'assistant' (the system prompt is the top-level "
                       "'system' parameter).", f"{w}.role")
        if "content" not in m:
            raise _bad(f"{w}.content: Field required", f"{w}.content", "missing_required_parameter")
        _check_blocks(m["content"], f"{w}.content", _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS)
    system = body.get("system")
    if system is not None:
        _check_blocks(system, "system", frozenset({"text"}))
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _bad("stream: a boolean is required.", "stream", "invalid_type")
    _number(body, "temperature", 0.0, 1.0)
    _number(body, "top_p", 0.0, 1.0)
    tk = body.get("top_k")
    if tk is not None and (isinstance(tk, bool) or not isinstance(tk, int) or tk < 0):
        raise _bad("top_k: must be a non-negative integer.", "top_k")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise _bad("stop_sequences: an array of non-empty strings is required.", "stop_sequences",
                       "invalid_type")
        if len(stops) > MAX_STOP_SEQUENCES:
            raise _bad(f"stop_sequences: at most {MAX_STOP_SEQUENCES} are supported by this gateway "
                       "(the models behind it take no more).", "stop_sequences")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools: an array is required.", "tools", "invalid_type")
        for i, t in enumerate(tools):
            w = f"tools.{i}"
            if not isinstance(t, dict):
                raise _bad(f"{w}: must be an object.", w, "invalid_type")
            if t.get("type") not in (None, "custom"):
                raise _bad(f"{w}.type: server tool '{str(t.get('type'))[:40]}' is not supported: no model "
                           "behind this gateway runs Anthropic's server tools; declare a custom tool "
                           "(name, description, input_schema) instead.", f"{w}.type")
            _need_str(t.get("name"), f"{w}.name", empty_ok=False)
            if t.get("description") is not None:
                _need_str(t["description"], f"{w}.description")
            if not isinstance(t.get("input_schema"), dict):
                raise _bad(f"{w}.input_schema: a JSON Schema object is required.", f"{w}.input_schema",
                           "invalid_type")
    tc = body.get("tool_choice")
    if tc is not None:
        if not isinstance(tc, dict) or tc.get("type") not in ("auto", "any", "tool", "none"):
            raise _bad("tool_choice.type: must be 'auto', 'any', 'tool' or 'none'.", "tool_choice")
        if tc["type"] == "tool":
            _need_str(tc.get("name"), "tool_choice.name", empty_ok=False)
        dp = tc.get("disable_parallel_tool_use")
        if dp is not None and not isinstance(dp, bool):
            raise _bad("tool_choice.disable_parallel_tool_use: a boolean is required.", "tool_choice",
                       "invalid_type")
    md = body.get("metadata")
    if md is not None and (not isinstance(md, dict) or not isinstance(md.get("user_id", ""), str | None)):
        raise _bad("metadata: an object with an optional string 'user_id' is required.", "metadata",
                   "invalid_type")
    oc = body.get("output_config")
    if oc is not None:
        fmt = oc.get("format") if isinstance(oc, dict) else None
        if not isinstance(oc, dict) or (fmt is not None and (
                not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict))):
            raise _bad("output_config.format: must be {'type': 'json_schema', 'schema': {...}}.",
                       "output_config.format")
    th = body.get("thinking")
    if th is not None and (not isinstance(th, dict) or th.get("type") not in ("enabled", "disabled", "adaptive")):
        raise _bad("thinking.type: must be 'enabled', 'disabled' or 'adaptive'.", "thinking")
    return body


# -- request: Anthropic -> OpenAI chat -------------------------------------------------------

def _image_part(b: dict[str, Any]) -> dict[str, Any]:
    src = b["source"]
    url = f"data:{src['media_type']};base64,{src['data']}" if src["type"] == "base64" else src["url"]
    return {"type": "image_url", "image_url": {"url": url}}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b["text"] for b in content or () if b.get("type") == "text")


def _user_turn(content: Any) -> list[dict[str, Any]]:
    """One Anthropic user turn as OpenAI messages: tool results first (as `tool` messages, in order),
    then one user message with the rest (images from tool results join it: a tool message is text)."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for b in content:
        t = b["type"]
        if t == "text":
            parts.append({"type": "text", "text": b["text"]})
        elif t == "image":
            parts.append(_image_part(b))
        elif t == "tool_result":
            c = b.get("content")
            text = _text_of(c) if c is not None else ""
            if b.get("is_error"):
                text = "[tool error] " + text
            out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": text})
            if isinstance(c, list):
                parts.extend(_image_part(x) for x in c if x.get("type") == "image")
    parts = [p for p in parts if p["type"] != "text" or p["text"]]
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        out.append({"role": "user", "content": "\n".join(p["text"] for p in parts) if only_text else parts})
    elif not out:
        raise _bad("messages: a user turn must not be empty.", "messages", "empty_content")
    return out


def _assistant_turn(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text = "".join(b["text"] for b in content if b["type"] == "text")
    calls = [{"id": b["id"], "type": "function",
              "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()}}
             for b in content if b["type"] == "tool_use"]
    msg: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        msg["tool_calls"] = calls
    return msg


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat-completions body for a validated Messages request (pure)."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n\n".join(b["text"] for b in system)
        if text:
            messages.append({"role": "system", "content": text})
    for m in body["messages"]:
        if m["role"] == "user":
            messages.extend(_user_turn(m["content"]))
        else:
            messages.append(_assistant_turn(m["content"]))
    chat: dict[str, Any] = {"model": body.get("model") or "auto", "messages": messages}
    if body.get("max_tokens") is not None:
        chat["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        chat["user"] = user
    tools = body.get("tools")
    if tools:
        chat["tools"] = [{"type": "function", "function": {
            "name": t["name"], **({"description": t["description"]} if t.get("description") else {}),
            "parameters": t["input_schema"]}} for t in tools]
    tc = body.get("tool_choice")
    if tc is not None:
        kind = tc["type"]
        if kind == "tool":
            chat["tool_choice"] = {"type": "function", "function": {"name": tc["name"]}}
        elif tools or kind == "none":
            chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        if tc.get("disable_parallel_tool_use") and tools:
            chat["parallel_tool_calls"] = False
    fmt = (body.get("output_config") or {}).get("format")
    if fmt:
        # structured outputs: the chat API's json_schema response format (providers map or refuse it)
        chat["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}}
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """count_tokens: the router's estimate for the prompt (text and tool schemas; images ~1k each)."""
    chat = to_chat(body)
    n = estimate_tokens(chat["messages"])
    for t in chat.get("tools") or ():
        n += (len(orjson.dumps(t["function"])) + 3) // 4
    images = sum(1 for m in chat["messages"] if isinstance(m.get("content"), list)
                 for p in m["content"] if p.get("type") == "image_url")
    return n + 1000 * images + 4 * len(chat["messages"])


# -- reply: OpenAI chat -> Anthropic ------------------------------------------------------------

def _tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        v = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {"_raw_arguments": str(arguments)}  # a model's broken JSON: kept, not lost
    return v if isinstance(v, dict) else {"_value": v}


def stop_reason_of(finish: Any, has_tools: bool) -> str:
    return "tool_use" if has_tools else _STOP.get(str(finish), "end_turn")


def from_chat(data: dict[str, Any]) -> dict[str, Any]:
    """The Messages reply for a finished OpenAI chat completion (the router's, so id/model/usage are set)."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = msg.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    calls = [c for c in msg.get("tool_calls") or () if isinstance(c, dict)]
    for c in calls:
        fn = c.get("function") or {}
        content.append({"type": "tool_use", "id": str(c.get("id") or ""), "name": str(fn.get("name") or ""),
                        "input": _tool_input(fn.get("arguments"))})
    if not content:
        content.append({"type": "text", "text": ""})
    usage = data.get("usage") or {}
    return {"id": data["id"], "type": "message", "role": "assistant", "model": data["model"], "content": content,
            "stop_reason": stop_reason_of(choice.get("finish_reason"), bool(calls)), "stop_sequence": None,
            "usage": {"input_tokens": usage.get("prompt_tokens", 0),
                      "output_tokens": usage.get("completion_tokens", 0)}}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class MessagesStream:
    """OpenAI chat chunks in, Anthropic's SSE events out, in the documented order:
    message_start, then per content block content_block_start / ping (once) / content_block_delta
    (text_delta or input_json_delta) / content_block_stop, then message_delta (stop_reason and
    usage), message_stop. Blocks are opened lazily as text or tool calls arrive."""

    def __init__(self, message_id: str, model: str, input_tokens: int) -> None:
        self.id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = 0
        self._started = False
        self._pinged = False
        self._open: int | None = None  # index of the open block
        self._open_kind = ""
        self._next = 0
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index -> block index
        self._finish: str | None = None

    def _start(self) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            yield sse("message_start", {"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "content": [], "model": self.model,
                "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": 1}}})

    def _close(self) -> Iterator[bytes]:
        if self._open is not None:
            yield sse("content_block_stop", {"type": "content_block_stop", "index": self._open})
            self._open = None

    def _open_block(self, block: dict[str, Any]) -> Iterator[bytes]:
        yield from self._close()
        self._open, self._open_kind = self._next, block["type"]
        self._next += 1
        yield sse("content_block_start", {"type": "content_block_start", "index": self._open,
                                          "content_block": block})
        if not self._pinged:
            self._pinged = True
            yield sse("ping", {"type": "ping"})

    def feed(self, chunk: dict[str, Any]) -> Iterator[bytes]:
        yield from self._start()
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = int(usage.get("prompt_tokens") or self.input_tokens)
            self.output_tokens = int(usage.get("completion_tokens") or 0)
        for c in chunk.get("choices") or ():
            if not isinstance(c, dict) or c.get("index", 0) != 0:
                continue
            delta = c.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._open_kind != "text" or self._open is None:
                    yield from self._open_block({"type": "text", "text": ""})
                yield sse("content_block_delta", {"type": "content_block_delta", "index": self._open,
                                                  "delta": {"type": "text_delta", "text": text}})
            for tc in delta.get("tool_calls") or ():
                if not isinstance(tc, dict):
                    continue
                oi = tc.get("index", 0)
                fn = tc.get("function") or {}
                if oi not in self._tools:
                    yield from self._open_block({"type": "tool_use", "id": str(tc.get("id") or f"toolu_{oi}"),
                                                 "name": str(fn.get("name") or ""), "input": {}})
                    self._tools[oi] = self._open  # type: ignore[assignment]
                args = fn.get("arguments")
                if isinstance(args, str) and args:
                    yield sse("content_block_delta", {"type": "content_block_delta", "index": self._tools[oi],
                                                      "delta": {"type": "input_json_delta", "partial_json": args}})
            if c.get("finish_reason"):
                self._finish = c["finish_reason"]

    def finish(self) -> Iterator[bytes]:
        yield from self._start()
        if self._next == 0:  # nothing was said: one empty text block, as from_chat() gives
            yield from self._open_block({"type": "text", "text": ""})
        yield from self._close()
        yield sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop_reason_of(self._finish, bool(self._tools)),
                                              "stop_sequence": None},
                                    "usage": {"output_tokens": self.output_tokens}})
        yield sse("message_stop", {"type": "message_stop"})

    def fail(self, message: str, overloaded: bool = False) -> Iterator[bytes]:
        """A stream that broke after it began: Anthropic's `error` event (the SDK raises on it)."""
        yield from self._start()
        yield sse("error", {"type": "error", "error": {"type": "overloaded_error" if overloaded else "api_error",
                                                       "message": message}})
