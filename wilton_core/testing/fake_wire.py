"""The four real wire formats as the fake upstream speaks them: parse a request, render replies and errors.

Pure functions over bytes and dicts, so the fake server stays a thin loop. The shapes follow the
public API references (OpenAI chat completions + SSE with the usage chunk, Ollama /api/chat
NDJSON, Gemini generateContent + `alt=sse`, Anthropic Messages + named SSE events).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "CONTENT_TYPES",
    "ParsedRequest",
    "Reply",
    "build_reply",
    "error_body",
    "malformed_body",
    "parse_request",
    "render_complete",
    "render_stream",
]

WIRES = ("openai", "ollama", "gemini", "anthropic")
CONTENT_TYPES = {
    ("openai", False): b"application/json",
    ("openai", True): b"text/event-stream",
    ("ollama", False): b"application/json; charset=utf-8",
    ("ollama", True): b"application/x-ndjson",
    ("gemini", False): b"application/json; charset=UTF-8",
    ("gemini", True): b"text/event-stream",
    ("anthropic", False): b"application/json",
    ("anthropic", True): b"text/event-stream; charset=utf-8",
}
_FILLER = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while", "seven", "wise", "owls", "count", "the", "silent", "stars", "above", "a", "quiet", "river"]
_GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_ANTHROPIC_TYPE = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                   500: "api_error", 529: "overloaded_error"}
_OPENAI_TYPE = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                404: "invalid_request_error", 429: "rate_limit_exceeded"}


@dataclass(slots=True)
class ParsedRequest:
    wire: str
    model: str
    stream: bool
    include_usage: bool = False
    last_user: str = ""
    last_is_tool_result: bool = False
    prompt_chars: int = 0
    images: int = 0
    tool: tuple[str, dict[str, Any]] | None = None  # (name, JSON schema) of the tool to call
    max_tokens: int | None = None


@dataclass(slots=True)
class Reply:
    tokens: list[str]
    tool: tuple[str, dict[str, Any]] | None  # (name, arguments)
    finish: str  # "stop" | "length" | "tool_calls"
    prompt_tokens: int
    completion_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def _text_of(content: Any) -> tuple[str, int]:
    """(text, image count) of OpenAI/Anthropic-style content (string or parts/blocks)."""
    if isinstance(content, str):
        return content, 0
    texts, images = [], 0
    for p in content or ():
        if not isinstance(p, dict):
            continue
        t = p.get("type")
        if t == "text":
            texts.append(str(p.get("text", "")))
        elif t in ("image_url", "image"):
            images += 1
        elif t == "tool_result":
            c = p.get("content")
            texts.append(c if isinstance(c, str) else _text_of(c)[0])
    return "\n".join(texts), images


def _choose_tool(tools: list[tuple[str, dict[str, Any]]], forced: str | None) -> tuple[str, dict[str, Any]] | None:
    if not tools:
        return None
    for name, schema in tools:
        if name == forced:
            return name, schema
    return tools[0]


def _parse_openai(body: dict[str, Any], ollama: bool) -> ParsedRequest:
    msgs = [m for m in body.get("messages") or () if isinstance(m, dict)]
    req = ParsedRequest("ollama" if ollama else "openai", str(body.get("model", "")),
                        bool(body.get("stream", ollama)))
    req.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    for m in msgs:
        text, imgs = _text_of(m.get("content"))
        req.prompt_chars += len(text)
        req.images += imgs + len(m.get("images") or ())
        if m.get("role") == "user":
            req.last_user = text
    req.last_is_tool_result = bool(msgs) and msgs[-1].get("role") == "tool"
    choice = body.get("tool_choice")
    if choice != "none":
        tools = [((t.get("function") or {}).get("name", ""), (t.get("function") or {}).get("parameters") or {})
                 for t in body.get("tools") or () if isinstance(t, dict)]
        forced = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
        req.tool = _choose_tool(tools, forced)
    mt = (body.get("options") or {}).get("num_predict") if ollama else (
        body.get("max_completion_tokens") or body.get("max_tokens"))
    req.max_tokens = int(mt) if isinstance(mt, int) and mt > 0 else None
    return req


def _parse_gemini(body: dict[str, Any], model: str, stream: bool) -> ParsedRequest:
    req = ParsedRequest("gemini", model, stream)
    contents = body.get("contents") or []
    for c in contents:
        for p in c.get("parts") or ():
            if "text" in p:
                req.prompt_chars += len(p["text"])
                if c.get("role", "user") == "user":
                    req.last_user = p["text"]
            if "inlineData" in p or "inline_data" in p or "fileData" in p or "file_data" in p:
                req.images += 1
    for p in (body.get("systemInstruction") or {}).get("parts") or ():
        req.prompt_chars += len(p.get("text", ""))
    last_parts = contents[-1].get("parts") or [] if contents else []
    req.last_is_tool_result = any("functionResponse" in p or "function_response" in p for p in last_parts)
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if fcc.get("mode") != "NONE":
        tools = []
        for t in body.get("tools") or ():
            for d in t.get("functionDeclarations") or t.get("function_declarations") or ():
                schema = d.get("parametersJsonSchema") or d.get("parameters_json_schema") or d.get("parameters") or {}
                tools.append((d.get("name", ""), schema))
        allowed = fcc.get("allowedFunctionNames") or [None]
        req.tool = _choose_tool(tools, allowed[0])
    mt = (body.get("generationConfig") or {}).get("maxOutputTokens")
    req.max_tokens = int(mt) if isinstance(mt, int) and mt > 0 else None
    return req


def _parse_anthropic(body: dict[str, Any]) -> ParsedRequest:
    req = ParsedRequest("anthropic", str(body.get("model", "")), bool(body.get("stream")))
    msgs = body.get("messages") or []
    system = body.get("system")
    req.prompt_chars += len(system if isinstance(system, str) else _text_of(system)[0])
    for m in msgs:
        text, imgs = _text_of(m.get("content"))
        req.prompt_chars += len(text)
        req.images += imgs
        typed = _text_of([b for b in m.get("content") if b.get("type") == "text"])[0] if isinstance(
            m.get("content"), list) else text
        if m.get("role") == "user" and typed:  # a tool_result turn is not what the user said
            req.last_user = typed
    last = msgs[-1].get("content") if msgs else None
    req.last_is_tool_result = isinstance(last, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last)
    choice = body.get("tool_choice") or {}
    if choice.get("type") != "none":
        tools = [(t.get("name", ""), t.get("input_schema") or {}) for t in body.get("tools") or ()]
        req.tool = _choose_tool(tools, choice.get("name"))
    mt = body.get("max_tokens")
    req.max_tokens = int(mt) if isinstance(mt, int) and mt > 0 else None
    return req


def parse_request(wire: str, body: dict[str, Any], *, model: str = "", stream: bool = False) -> ParsedRequest:
    """Model, stream flag and what the reply depends on; `model`/`stream` are for Gemini (URL-borne)."""
    if wire == "gemini":
        return _parse_gemini(body, model, stream)
    if wire == "anthropic":
        return _parse_anthropic(body)
    return _parse_openai(body, ollama=wire == "ollama")


def _sample_args(schema: dict[str, Any], text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        t = prop.get("type") if isinstance(prop, dict) else None
        t = t[0] if isinstance(t, list) and t else t
        if isinstance(prop, dict) and prop.get("enum"):
            out[name] = prop["enum"][0]
        else:
            out[name] = {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(str(t), text)
    return out


def build_reply(req: ParsedRequest, *, reply: str | None = None, reply_words: int = 0,
                tool_call: bool = True) -> Reply:
    """The deterministic answer: "[model] <last user message>" (or the scripted text), or a tool call."""
    prompt_tokens = max(1, (req.prompt_chars + 3) // 4)
    if req.tool and tool_call and not req.last_is_tool_result:
        name, schema = req.tool
        args = _sample_args(schema, req.last_user)
        return Reply([], (name, args), "tool_calls", prompt_tokens,
                     max(1, len(orjson.dumps(args)) // 4))
    text = reply if reply is not None else f"[{req.model}] {req.last_user}".rstrip()
    if reply is None and req.images:
        text += f" [images:{req.images}]"
    words = text.split(" ")
    if len(words) < reply_words:
        words += [_FILLER[i % len(_FILLER)] for i in range(reply_words - len(words))]
    tokens = [words[0]] + [" " + w for w in words[1:]]
    finish = "stop"
    if req.max_tokens is not None and len(tokens) > req.max_tokens:
        tokens, finish = tokens[: req.max_tokens], "length"
    return Reply(tokens, None, finish, prompt_tokens, len(tokens))


def _id(prefix: str) -> str:
    return prefix + os.urandom(8).hex()


# -- non-streaming bodies ------------------------------------------------------------------

def render_complete(req: ParsedRequest, r: Reply) -> bytes:
    now = int(time.time())
    if req.wire == "openai":
        msg: dict[str, Any] = {"role": "assistant", "content": r.text if not r.tool else None, "refusal": None}
        if r.tool:
            msg["tool_calls"] = [{"id": _id("call_"), "type": "function",
                                  "function": {"name": r.tool[0], "arguments": orjson.dumps(r.tool[1]).decode()}}]
        return orjson.dumps({
            "id": _id("chatcmpl-"), "object": "chat.completion", "created": now, "model": req.model,
            "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": r.finish}],
            "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                      "total_tokens": r.prompt_tokens + r.completion_tokens},
            "system_fingerprint": "fp_fake"})
    if req.wire == "ollama":
        omsg: dict[str, Any] = {"role": "assistant", "content": r.text}
        if r.tool:
            omsg["tool_calls"] = [{"function": {"name": r.tool[0], "arguments": r.tool[1]}}]
        return orjson.dumps({
            "model": req.model, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "message": omsg, "done": True, "done_reason": "length" if r.finish == "length" else "stop",
            "total_duration": 1000, "load_duration": 10, "prompt_eval_count": r.prompt_tokens,
            "prompt_eval_duration": 100, "eval_count": r.completion_tokens, "eval_duration": 500})
    if req.wire == "gemini":
        return orjson.dumps(_gemini_chunk(req, r.tokens, r, final=True))
    content: list[dict[str, Any]] = [{"type": "text", "text": r.text}] if not r.tool else [
        {"type": "tool_use", "id": _id("toolu_"), "name": r.tool[0], "input": r.tool[1]}]
    return orjson.dumps({
        "id": _id("msg_"), "type": "message", "role": "assistant", "model": req.model, "content": content,
        "stop_reason": _anthropic_stop(r), "stop_sequence": None,
        "usage": {"input_tokens": r.prompt_tokens, "output_tokens": r.completion_tokens}})


def _anthropic_stop(r: Reply) -> str:
    return {"tool_calls": "tool_use", "length": "max_tokens"}.get(r.finish, "end_turn")


def _gemini_chunk(req: ParsedRequest, tokens: list[str], r: Reply, *, final: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": "".join(tokens)}] if tokens else []
    if final and r.tool:
        parts.append({"functionCall": {"name": r.tool[0], "args": r.tool[1]}})
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    out: dict[str, Any] = {"candidates": [cand], "modelVersion": req.model, "responseId": _id("")}
    if final:
        cand["finishReason"] = "MAX_TOKENS" if r.finish == "length" else "STOP"
        out["usageMetadata"] = {"promptTokenCount": r.prompt_tokens, "candidatesTokenCount": r.completion_tokens,
                                "totalTokenCount": r.prompt_tokens + r.completion_tokens}
    return out


# -- streams: (head frames, token frames, tail frames) -------------------------------------------

def _sse(obj: Any, event: str | None = None, crlf: bool = False) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(obj) + (b"\r\n\r\n" if crlf else b"\n\n")


def render_stream(req: ParsedRequest, r: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
    if req.wire == "openai":
        return _openai_stream(req, r)
    if req.wire == "ollama":
        return _ollama_stream(req, r)
    if req.wire == "gemini":
        toks = [_sse(_gemini_chunk(req, [t], r, final=False), crlf=True) for t in r.tokens[:-1]]
        last = r.tokens[-1:] if r.tokens else []
        return [], toks, [_sse(_gemini_chunk(req, last, r, final=True), crlf=True)]
    return _anthropic_stream(req, r)


def _openai_stream(req: ParsedRequest, r: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
    base = {"id": _id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": req.model, "system_fingerprint": "fp_fake"}
    extra = {"usage": None} if req.include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}], **extra})

    head = [chunk({"role": "assistant", "content": "" if not r.tool else None, "refusal": None})]
    if r.tool:
        args = orjson.dumps(r.tool[1]).decode()
        toks = [chunk({"tool_calls": [{"index": 0, "id": _id("call_"), "type": "function",
                                       "function": {"name": r.tool[0], "arguments": ""}}]})]
        toks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 8]}}]})
                 for i in range(0, len(args), 8)]
    else:
        toks = [chunk({"content": t}) for t in r.tokens]
    tail = [chunk({}, r.finish)]
    if req.include_usage:
        tail.append(_sse({**base, "choices": [], "usage": {
            "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "total_tokens": r.prompt_tokens + r.completion_tokens}}))
    tail.append(b"data: [DONE]\n\n")
    return head, toks, tail


def _ollama_stream(req: ParsedRequest, r: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def line(msg: dict[str, Any], **kw: Any) -> bytes:
        return orjson.dumps({"model": req.model, "created_at": ts, "message": msg, "done": False, **kw}) + b"\n"

    toks = [line({"role": "assistant", "content": t}) for t in r.tokens]
    if r.tool:
        toks.append(line({"role": "assistant", "content": "",
                          "tool_calls": [{"function": {"name": r.tool[0], "arguments": r.tool[1]}}]}))
    tail = [orjson.dumps({
        "model": req.model, "created_at": ts, "message": {"role": "assistant", "content": ""}, "done": True,
        "done_reason": "length" if r.finish == "length" else "stop", "total_duration": 1000,
        "prompt_eval_count": r.prompt_tokens, "eval_count": r.completion_tokens}) + b"\n"]
    return [], toks, tail


def _anthropic_stream(req: ParsedRequest, r: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
    msg: dict[str, Any] = {"id": _id("msg_"), "type": "message", "role": "assistant", "model": req.model, "content": [],
           "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 1}}
    head = [_sse({"type": "message_start", "message": msg}, "message_start")]
    if r.tool:
        block = {"type": "tool_use", "id": _id("toolu_"), "name": r.tool[0], "input": {}}
        args = orjson.dumps(r.tool[1]).decode()
        deltas = [{"type": "input_json_delta", "partial_json": args[i:i + 8]} for i in range(0, len(args), 8)]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in r.tokens]
    head.append(_sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"))
    head.append(_sse({"type": "ping"}, "ping"))
    toks = [_sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta") for d in deltas]
    tail = [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse({"type": "message_delta", "delta": {"stop_reason": _anthropic_stop(r), "stop_sequence": None},
              "usage": {"output_tokens": r.completion_tokens}}, "message_delta"),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return head, toks, tail


# -- errors ---------------------------------------------------------------------------------

def error_body(wire: str, status: int, message: str) -> bytes:
    if wire == "ollama":
        return orjson.dumps({"error": message})
    if wire == "gemini":
        return orjson.dumps({"error": {"code": status, "message": message,
                                       "status": _GEMINI_STATUS.get(status, "UNKNOWN")}})
    if wire == "anthropic":
        return orjson.dumps({"type": "error", "error": {"type": _ANTHROPIC_TYPE.get(status, "api_error"),
                                                        "message": message}})
    code = "context_length_exceeded" if "context" in message.lower() else None
    return orjson.dumps({"error": {"message": message, "type": _OPENAI_TYPE.get(status, "server_error"),
                                   "param": None, "code": code}})


def malformed_body(wire: str) -> bytes:
    """A 200 reply that is not the JSON the client expects (a proxy's HTML error page, cut short)."""
    return b'{"id": "broken", "choices": [{"index": 0, "message": <html>upstream proxy error'
