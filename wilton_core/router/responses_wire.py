"""OpenAI's Responses API (stateless subset) on the gateway side: validate, translate, stream.

Pure functions and one stream translator, no I/O. A Responses request becomes a chat body, runs
the router's usual path, and the chat result or chunks become a `response` object or the
documented semantic events (response.created ... response.completed). Decided, and documented
in docs/api-responses.md:
- `previous_response_id` and `conversation` are refused with 400: the router stores no
  conversations (a gateway that spreads turns over several models and replicas would need a
  shared, private transcript store for it); send the whole conversation in `input` instead.
- Built-in tools (web_search, file_search, computer use, code interpreter, MCP...) are refused
  with 400: no provider behind the router runs them. Function tools work.
- `store` is accepted and has no effect (nothing is stored); `reasoning` and `include` are
  accepted and ignored (no reasoning items are produced).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import orjson

from wilton_core.errors import RequestError
from wilton_core.router.wire import MAX_JSON_DEPTH, json_depth_exceeds

__all__ = ["ResponsesStream", "from_chat", "to_chat", "validate_responses_request"]

_ROLES = frozenset({"user", "system", "developer", "assistant"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> RequestError:
    return RequestError(message, param=param, code=code)


def _str(v: Any, where: str, *, empty_ok: bool = True) -> str:
    if not isinstance(v, str) or (not empty_ok and not v):
        raise _bad(f"'{where}' must be a {'non-empty ' if not empty_ok else ''}string.", where, "invalid_type")
    return v


def _check_content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"'{where}' must be a string or an array of content parts.", where, "invalid_type")
    for j, p in enumerate(content):
        w = f"{where}[{j}]"
        if not isinstance(p, dict) or not isinstance(p.get("type"), str):
            raise _bad(f"'{w}' must be an object with a string 'type'.", w, "invalid_type")
        t = p["type"]
        if t in _TEXT_PARTS:
            _str(p.get("text"), f"{w}.text")
        elif t == "input_image":
            url = p.get("image_url")
            if not isinstance(url, str) or not url:
                raise _bad(f"'{w}.image_url' must be a URL or data: URL (file_id is not supported: the router "
                           "stores no files).", f"{w}.image_url", "invalid_type")
        elif t == "refusal":
            _str(p.get("refusal"), f"{w}.refusal")
        else:
            raise _bad(f"'{w}.type' '{t[:40]}' is not supported (input_text, input_image, output_text, "
                       "refusal).", f"{w}.type")


def _check_item(item: Any, i: int) -> None:
    w = f"input[{i}]"
    if not isinstance(item, dict):
        raise _bad(f"'{w}' must be an object.", w, "invalid_type")
    kind = item.get("type", "message")
    if kind == "message":
        if item.get("role") not in _ROLES:
            raise _bad(f"'{w}.role' must be one of {sorted(_ROLES)}.", f"{w}.role")
        if "content" not in item:
            raise _bad(f"'{w}.content' is required.", f"{w}.content", "missing_required_parameter")
        _check_content(item["content"], f"{w}.content")
    elif kind == "function_call":
        _str(item.get("call_id"), f"{w}.call_id", empty_ok=False)
        _str(item.get("name"), f"{w}.name", empty_ok=False)
        _str(item.get("arguments"), f"{w}.arguments")
    elif kind == "function_call_output":
        _str(item.get("call_id"), f"{w}.call_id", empty_ok=False)
        out = item.get("output")
        if not isinstance(out, str):
            _check_content(out, f"{w}.output")
    elif kind == "reasoning":
        return  # a previous turn's reasoning: dropped (no model here can take it back)
    else:
        raise _bad(f"'{w}.type' '{str(kind)[:40]}' is not supported (message, function_call, "
                   "function_call_output).", f"{w}.type")


def validate_responses_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_type")
    if json_depth_exceeds(body):
        raise _bad(f"The request nests objects or arrays deeper than {MAX_JSON_DEPTH} levels.", None,
                   "nesting_too_deep")
    for key in ("previous_response_id", "conversation"):
        if body.get(key) is not None:
            raise _bad(f"'{key}' is not supported: this router stores no responses or conversations. "
                       "Send the whole conversation in 'input' (earlier outputs included).", key, "unsupported_parameter")
    if body.get("background"):
        raise _bad("'background' is not supported: responses are not stored for later retrieval.", "background",
                   "unsupported_parameter")
    model = body.get("model", "auto")
    if not isinstance(model, str):
        raise _bad("'model' must be a string.", "model", "invalid_type")
    inp = body.get("input")
    if inp is None:
        raise _bad("'input' is required.", "input", "missing_required_parameter")
    if isinstance(inp, str):
        if not inp.strip():
            raise _bad("'input' must not be empty.", "input", "empty_content")
    elif isinstance(inp, list):
        if not inp:
            raise _bad("'input' must contain at least one item.", "input", "empty_array")
        for i, item in enumerate(inp):
            _check_item(item, i)
    else:
        raise _bad("'input' must be a string or an array of input items.", "input", "invalid_type")
    if body.get("instructions") is not None:
        _str(body["instructions"], "instructions")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _bad("'stream' must be a boolean.", "stream", "invalid_type")
    for key, (lo, hi) in (("temperature", (0.0, 2.0)), ("top_p", (0.0, 1.0))):
        v = body.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
                              or not lo <= v <= hi):
            raise _bad(f"'{key}' must be a number between {lo} and {hi}.", key)
    mot = body.get("max_output_tokens")
    if mot is not None and (isinstance(mot, bool) or not isinstance(mot, int) or mot < 1):
        raise _bad("'max_output_tokens' must be a positive integer.", "max_output_tokens")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("'tools' must be an array.", "tools", "invalid_type")
        for i, t in enumerate(tools):
            if not isinstance(t, dict) or t.get("type") != "function":
                kind = t.get("type") if isinstance(t, dict) else None
                raise _bad(f"'tools[{i}].type' '{str(kind)[:40]}' is not supported: only function tools are "
                           "(no provider behind this router runs OpenAI's built-in tools).", f"tools[{i}].type")
            _str(t.get("name"), f"tools[{i}].name", empty_ok=False)
            if t.get("parameters") is not None and not isinstance(t["parameters"], dict):
                raise _bad(f"'tools[{i}].parameters' must be a JSON Schema object.", f"tools[{i}].parameters",
                           "invalid_type")
            if t.get("description") is not None:
                _str(t["description"], f"tools[{i}].description")
    tc = body.get("tool_choice")
    if tc is not None and not (tc in ("auto", "none", "required") if isinstance(tc, str) else (
            isinstance(tc, dict) and tc.get("type") == "function" and isinstance(tc.get("name"), str))):
        raise _bad("'tool_choice' must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}.",
                   "tool_choice")
    text = body.get("text")
    if text is not None:
        fmt = text.get("format") if isinstance(text, dict) else None
        if not isinstance(text, dict) or (fmt is not None and (
                not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
                or (fmt["type"] == "json_schema" and not isinstance(fmt.get("schema"), dict)))):
            raise _bad("'text.format' must be {'type': 'text' | 'json_object'} or {'type': 'json_schema', "
                       "'name': ..., 'schema': {...}}.", "text.format")
    return body


# -- request: Responses -> chat -------------------------------------------------------------

def _parts(content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for p in content:
        t = p["type"]
        if t in _TEXT_PARTS:
            parts.append({"type": "text", "text": p["text"]})
        elif t == "refusal":
            parts.append({"type": "text", "text": p["refusal"]})
        elif t == "input_image":
            parts.append({"type": "image_url", "image_url": {"url": p["image_url"],
                                                             **({"detail": p["detail"]} if p.get("detail") else {})}})
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts) if len(parts) != 1 else parts[0]["text"]
    return parts


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body for a validated Responses request (pure)."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    inp = body["input"]
    if isinstance(inp, str):
        messages.append({"role": "user", "content": inp})
    else:
        for item in inp:
            kind = item.get("type", "message")
            if kind == "message":
                content = _parts(item["content"])
                if item["role"] == "assistant" and isinstance(content, list):
                    content = "".join(p.get("text", "") for p in content)
                messages.append({"role": item["role"], "content": content})
            elif kind == "function_call":
                call = {"id": item["call_id"], "type": "function",
                        "function": {"name": item["name"], "arguments": item["arguments"]}}
                last = messages[-1] if messages else None
                if last is not None and last["role"] == "assistant":
                    # consecutive calls (and the text before them) are one assistant turn in chat
                    last.setdefault("tool_calls", []).append(call)
                    if last.get("content") == "":
                        last["content"] = None
                else:
                    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            elif kind == "function_call_output":
                out = item["output"]
                text = out if isinstance(out, str) else "".join(
                    p.get("text", "") for p in out if p.get("type") in _TEXT_PARTS)
                messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
    chat: dict[str, Any] = {"model": body.get("model") or "auto", "messages": messages}
    for key in ("temperature", "top_p", "user", "parallel_tool_calls"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    tools = body.get("tools")
    if tools:
        chat["tools"] = [{"type": "function", "function": {
            "name": t["name"], **({"description": t["description"]} if t.get("description") else {}),
            "parameters": t.get("parameters") or {"type": "object", "properties": {}},
            **({"strict": t["strict"]} if isinstance(t.get("strict"), bool) else {})}} for t in tools]
    tc = body.get("tool_choice")
    if tc is not None and (tools or tc == "none"):
        chat["tool_choice"] = tc if isinstance(tc, str) else {"type": "function", "function": {"name": tc["name"]}}
    fmt = (body.get("text") or {}).get("format")
    if fmt and fmt["type"] == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif fmt and fmt["type"] == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            "name": fmt.get("name") or "output", "schema": fmt["schema"],
            **({"strict": fmt["strict"]} if isinstance(fmt.get("strict"), bool) else {})}}
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


# -- reply: chat -> Responses -----------------------------------------------------------------

def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}


def response_shell(req: dict[str, Any], rid: str, model: str, created: int, status: str) -> dict[str, Any]:
    """The `response` object's fields that echo the request (the SDK and clients read them)."""
    fmt = (req.get("text") or {}).get("format") or {"type": "text"}
    return {
        "id": rid, "object": "response", "created_at": created, "status": status, "error": None,
        "incomplete_details": None, "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"), "model": model, "output": [],
        "parallel_tool_calls": req.get("parallel_tool_calls", True), "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "store": False,
        "temperature": req.get("temperature", 1.0), "text": {"format": fmt},
        "tool_choice": req.get("tool_choice", "auto"), "tools": req.get("tools") or [],
        "top_p": req.get("top_p", 1.0), "truncation": "disabled", "usage": None, "user": req.get("user"),
        "metadata": req.get("metadata") or {},
    }


def _item_ids(rid: str) -> tuple[str, str]:
    tail = rid.split("_", 1)[-1]
    return f"msg_{tail}", f"fc_{tail}"


def from_chat(req: dict[str, Any], data: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """The `response` object for a finished chat completion (the router's: id, model, usage set)."""
    rid = data["id"]
    choice = (data.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    msg_id, fc_id = _item_ids(rid)
    output: list[dict[str, Any]] = []
    text = msg.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    calls = [c for c in msg.get("tool_calls") or () if isinstance(c, dict)]
    if (isinstance(text, str) and text) or not calls:
        output.append({"type": "message", "id": msg_id, "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text or "", "annotations": [],
                                    "logprobs": []}]})
    for n, c in enumerate(calls):
        fn = c.get("function") or {}
        args = fn.get("arguments")
        output.append({"type": "function_call", "id": f"{fc_id}{n}", "call_id": str(c.get("id") or f"call_{n}"),
                       "name": str(fn.get("name") or ""),
                       "arguments": args if isinstance(args, str) else orjson.dumps(args or {}).decode(),
                       "status": "completed"})
    length = choice.get("finish_reason") == "length"
    out = response_shell(req, rid, data["model"], created or int(time.time()),
                         "incomplete" if length else "completed")
    if length:
        out["incomplete_details"] = {"reason": "max_output_tokens"}
    out["output"] = output
    u = data.get("usage") or {}
    out["usage"] = _usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
    return out


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ResponsesStream:
    """Chat chunks in, the Responses API's semantic events out (each with a sequence_number):
    response.created, response.in_progress, then per output item output_item.added, for a message
    content_part.added / output_text.delta... / output_text.done / content_part.done, for a function
    call function_call_arguments.delta... / .done, then output_item.done; last response.completed
    (or response.incomplete when max_output_tokens cut it, response.failed on an upstream failure)."""

    def __init__(self, req: dict[str, Any], rid: str, model: str, created: int | None = None) -> None:
        self.req = req
        self.rid = rid
        self.model = model
        self.created = created or int(time.time())
        self.seq = 0
        self.msg_id, self.fc_id = _item_ids(rid)
        self.output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None  # the output item being streamed
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool_calls index -> item
        self._finish: str | None = None
        self._usage = (0, 0)
        self._started = False

    def _ev(self, event: str, **data: Any) -> bytes:
        out = sse(event, {"type": event, "sequence_number": self.seq, **data})
        self.seq += 1
        return out

    def _shell(self, status: str) -> dict[str, Any]:
        return response_shell(self.req, self.rid, self.model, self.created, status)

    def _start(self) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            yield self._ev("response.created", response=self._shell("in_progress"))
            yield self._ev("response.in_progress", response=self._shell("in_progress"))

    def _close(self) -> Iterator[bytes]:
        item = self._open
        if item is None:
            return
        idx = len(self.output)
        if item["type"] == "message":
            text = "".join(self._text)
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            yield self._ev("response.output_text.done", item_id=item["id"], output_index=idx, content_index=0,
                           text=text, logprobs=[])
            yield self._ev("response.content_part.done", item_id=item["id"], output_index=idx, content_index=0,
                           part=part)
            item = {**item, "status": "completed", "content": [part]}
        else:
            yield self._ev("response.function_call_arguments.done", item_id=item["id"], output_index=idx,
                           name=item["name"], arguments=item["arguments"])
            item = {**item, "status": "completed"}
        yield self._ev("response.output_item.done", output_index=idx, item=item)
        self.output.append(item)
        self._open = None

    def _open_message(self) -> Iterator[bytes]:
        yield from self._close()
        idx = len(self.output)
        self._open = {"type": "message", "id": self.msg_id if idx == 0 else f"{self.msg_id}_{idx}",
                      "status": "in_progress", "role": "assistant", "content": []}
        self._text = []
        yield self._ev("response.output_item.added", output_index=idx, item=self._open)
        yield self._ev("response.content_part.added", item_id=self._open["id"], output_index=idx, content_index=0,
                       part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})

    def feed(self, chunk: dict[str, Any]) -> Iterator[bytes]:
        yield from self._start()
        u = chunk.get("usage")
        if isinstance(u, dict):
            self._usage = (int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        for c in chunk.get("choices") or ():
            if not isinstance(c, dict) or c.get("index", 0) != 0:
                continue
            delta = c.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._open is None or self._open["type"] != "message":
                    yield from self._open_message()
                assert self._open is not None
                self._text.append(text)
                yield self._ev("response.output_text.delta", item_id=self._open["id"], output_index=len(self.output),
                               content_index=0, delta=text, logprobs=[])
            for tc in delta.get("tool_calls") or ():
                if not isinstance(tc, dict):
                    continue
                ci = tc.get("index", 0)
                fn = tc.get("function") or {}
                if ci not in self._calls:
                    yield from self._close()
                    item = {"type": "function_call", "id": f"{self.fc_id}{len(self._calls)}",
                            "call_id": str(tc.get("id") or f"call_{ci}"), "name": str(fn.get("name") or ""),
                            "arguments": "", "status": "in_progress"}
                    self._calls[ci] = self._open = item
                    yield self._ev("response.output_item.added", output_index=len(self.output), item=dict(item))
                item = self._calls[ci]
                args = fn.get("arguments")
                if isinstance(args, str) and args and item is self._open:
                    item["arguments"] += args
                    yield self._ev("response.function_call_arguments.delta", item_id=item["id"],
                                   output_index=len(self.output), delta=args)
            if c.get("finish_reason"):
                self._finish = c["finish_reason"]

    def finish(self) -> Iterator[bytes]:
        yield from self._start()
        if self._open is None and not self.output:
            yield from self._open_message()  # nothing was said: one empty message, as from_chat() gives
        yield from self._close()
        length = self._finish == "length"
        final = self._shell("incomplete" if length else "completed")
        if length:
            final["incomplete_details"] = {"reason": "max_output_tokens"}
        final["output"] = self.output
        final["usage"] = _usage(*self._usage)
        yield self._ev("response.incomplete" if length else "response.completed", response=final)

    def fail(self, code: str, message: str) -> Iterator[bytes]:
        yield from self._start()
        final = self._shell("failed")
        final["error"] = {"code": "server_error", "message": f"{message} ({code})"}
        final["output"] = self.output
        yield self._ev("response.failed", response=final)
