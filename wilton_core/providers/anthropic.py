"""Anthropic's Messages API over raw httpx, translated to and from OpenAI shapes.

Raw httpx rather than the SDK for the same reason as the OpenAI provider: one pooled client,
an injectable transport, and SSE events handled exactly as documented (message_start,
content_block_start/delta/stop incl. input_json_delta, message_delta, message_stop, error).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from wilton_core.config import ModelConfig
from wilton_core.errors import BadRequestError, ProviderError, UnavailableError
from wilton_core.providers._common import (
    ChunkFactory,
    RequestShape,
    dumps,
    estimate_tokens,
    iter_sse,
    max_tokens_of,
    parse_data_url,
    prompt_chars,
    stop_list,
)
from wilton_core.providers.errors_map import error_from_http, upstream_call
from wilton_core.providers.http_base import HttpProvider, UpstreamResponse
from wilton_core.providers.limits import Deadline
from wilton_core.types import Completion, Usage, token_count

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "finish_reason_of", "to_anthropic_request"]

DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
           "refusal": "content_filter", "pause_turn": "stop"}
# Anthropic names its error types instead of relying on the status of a mid-stream error event.
_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                 "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                 "api_error": 500, "overloaded_error": 529}


def finish_reason_of(stop_reason: str | None) -> str:
    return _FINISH.get(stop_reason or "end_turn", "stop")


# Shape checks of the upstream's reply: a ValueError/TypeError here is mapped to "malformed reply".

def _object(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError(f"{what} is not an object")
    return v


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{what} is not a string")
    return v


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("index is not an integer")
    return v


def _usage(u: Any) -> Usage:
    """Anthropic usage (input = uncached + cache reads + cache writes), every count sanitised."""
    if not isinstance(u, dict):
        return Usage()
    return Usage.of(token_count(u.get("input_tokens")) + token_count(u.get("cache_read_input_tokens"))
                    + token_count(u.get("cache_creation_input_tokens")), u.get("output_tokens"))


def _blocks(content: Any, model_id: str, shape: RequestShape, where: str) -> list[dict[str, Any]]:
    content = shape.parts(content, where)
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for p in content:
        if p.get("type") == "text":
            blocks.append({"type": "text", "text": p.get("text", "")})
        elif p.get("type") == "image_url":
            iu = p.get("image_url")
            url = str(iu.get("url") if isinstance(iu, dict) else iu)
            if url.startswith("data:"):
                mime, data = parse_data_url(url, provider="anthropic", model=model_id)
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}})
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
    return blocks


def _args(s: Any) -> Any:
    if not isinstance(s, str):
        return s or {}
    try:
        return orjson.loads(s or "{}")
    except orjson.JSONDecodeError:
        return {}


def json_tool_of(body: Mapping[str, Any], model: ModelConfig) -> dict[str, Any] | None:
    """The forced tool that carries `response_format` on Anthropic (its documented JSON-mode recipe:
    the tool's input is the JSON reply), or None. With the client's own tools it is refused: forcing
    one tool would stop the model from calling the others (h6, issue 17: never silently dropped)."""
    rf = body.get("response_format")
    if not isinstance(rf, dict) or rf.get("type") not in ("json_object", "json_schema"):
        return None
    if body.get("tools"):
        raise BadRequestError(f"anthropic model '{model.id}' cannot combine response_format with tools "
                              "(JSON mode is a forced tool there); drop one, or use another model",
                              provider="anthropic", model=model.id, status=400)
    if rf["type"] == "json_object":
        return {"name": "json_object", "description": "Reply with a JSON object.", "input_schema": {"type": "object"}}
    js = rf.get("json_schema") or {}
    name = str(js.get("name") or "json_output")[:64]
    return {"name": name, "description": "Reply with JSON matching this schema.",
            "input_schema": js.get("schema") or {"type": "object"}}


def _json_tool_name(body: Mapping[str, Any], model: ModelConfig) -> str | None:
    """The name of the JSON-mode tool of this request, if any (the request itself was checked when
    it was built: with client tools it never gets this far)."""
    try:
        tool = json_tool_of(body, model)
    except BadRequestError:
        return None
    return str(tool["name"]) if tool else None


def to_anthropic_request(body: Mapping[str, Any], model: ModelConfig, stream: bool) -> dict[str, Any]:
    """The /v1/messages body for an OpenAI chat-completions body (pure)."""
    shape = RequestShape("anthropic", model.id)
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        # The API wants user/assistant turns alternating: merge neighbours of the same role.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for i, m in enumerate(shape.messages(body)):
        role = m.get("role")
        where = f"messages[{i}]"
        content = m.get("content")
        if role in ("system", "developer"):
            system.extend(b["text"] for b in _blocks(content, model.id, shape, f"{where}.content")
                          if b["type"] == "text")
        elif role == "tool":
            call_id = m.get("tool_call_id", "")
            if not isinstance(call_id, str):
                raise shape.fail("must be a string", f"{where}.tool_call_id")
            add("user", [{"type": "tool_result", "tool_use_id": call_id,
                          "content": content if isinstance(content, str)
                          else _blocks(content, model.id, shape, f"{where}.content")}])
        elif role == "assistant":
            blocks = _blocks(content, model.id, shape, f"{where}.content")
            for tc in shape.tool_calls(m, where):
                fn = tc["function"]
                blocks.append({"type": "tool_use", "id": tc.get("id", ""), "name": fn.get("name", ""),
                               "input": _args(fn.get("arguments"))})
            add("assistant", blocks)
        else:
            add("user", _blocks(content, model.id, shape, f"{where}.content") or [{"type": "text", "text": ""}])

    req: dict[str, Any] = {"model": model.model, "messages": messages,
                           "max_tokens": max_tokens_of(body, model) or DEFAULT_MAX_TOKENS}
    if system:
        req["system"] = "\n\n".join(system)
    if body.get("temperature") is not None:
        # OpenAI's range is [0, 2], Anthropic's [0, 1].
        req["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        req["top_p"] = body["top_p"]
    stops = stop_list(body.get("stop"))
    if stops:
        req["stop_sequences"] = stops
    if isinstance(body.get("user"), str):
        req["metadata"] = {"user_id": body["user"]}
    tools = shape.tools(body)
    choice = body.get("tool_choice")
    if tools:
        req["tools"] = [{"name": f.get("name", ""), "description": f.get("description", ""),
                         "input_schema": f.get("parameters") or {"type": "object", "properties": {}}}
                        for f in tools]
        if choice == "required":
            req["tool_choice"] = {"type": "any"}
        elif choice == "none":
            req["tool_choice"] = {"type": "none"}
        elif isinstance(choice, dict):
            req["tool_choice"] = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    json_tool = json_tool_of(body, model)
    if json_tool is not None:
        req["tools"] = [json_tool]
        req["tool_choice"] = {"type": "tool", "name": json_tool["name"]}
    if stream:
        req["stream"] = True
    return req


class AnthropicProvider(HttpProvider):
    name = "anthropic"
    default_base_url = DEFAULT_ANTHROPIC_URL

    @classmethod
    def base_url_of(cls, model: ModelConfig, environ: Mapping[str, str]) -> str:
        # the paths below carry /v1 themselves; a base_url copied with it must not double it
        return super().base_url_of(model, environ).removesuffix("/v1")

    def _headers(self) -> tuple[dict[str, str], str | None]:
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        key = self.api_key()
        if key:
            headers["x-api-key"] = key
        return headers, key

    def _request(self, body: Mapping[str, Any], stream: bool) -> bytes:
        with self.error_scope().request():
            return dumps(to_anthropic_request(body, self.model, stream=stream))

    def _http_error(self, resp: UpstreamResponse, raw: bytes, key: str | None) -> ProviderError:
        return error_from_http(resp.status_code, resp.headers, raw, provider=self.name, model=self.model.id,
                               secrets=(key,))

    def _event_error(self, data: Mapping[str, Any], key: str | None) -> ProviderError:
        err = data.get("error")
        status = _ERROR_STATUS.get(str(err.get("type")), 500) if isinstance(err, dict) else 500
        return error_from_http(status, {}, data, provider=self.name, model=self.model.id, secrets=(key,))

    @upstream_call
    async def complete(self, body: Mapping[str, Any]) -> Completion:
        headers, key = self._headers()
        payload = self._request(body, stream=False)
        json_tool = _json_tool_name(body, self.model)
        resp = await Deadline(self._limits, self._label).run(
            self._client.post(f"{self._base}/v1/messages", content=payload, headers=headers))
        if resp.status_code >= 400:
            raise self._http_error(resp, resp.content, key)
        data = _object(orjson.loads(resp.content), "reply")
        if data.get("type") == "error":
            raise self._event_error(data, key)
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise ValueError("reply content is not a list")
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in blocks:
            block = _object(block, "content block")
            if block.get("type") == "text":
                text.append(_str(block.get("text", ""), "text block"))
            elif block.get("type") == "tool_use" and json_tool is not None and block.get("name") == json_tool:
                text.append(orjson.dumps(block.get("input") or {}).decode())  # JSON mode: the reply
            elif block.get("type") == "tool_use":
                calls.append({"id": _str(block["id"], "tool_use id"), "type": "function",
                              "function": {"name": _str(block["name"], "tool_use name"),
                                           "arguments": orjson.dumps(block.get("input") or {}).decode()}})
        usage = _usage(data.get("usage"))
        content = "".join(text)
        message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        stop = _opt_str(data.get("stop_reason"))
        finish = "tool_calls" if calls else finish_reason_of("end_turn" if json_tool and stop == "tool_use" else stop)
        out = ChunkFactory(str(data.get("model") or self.model.model), _opt_str(data.get("id"))).completion(
            message, finish, usage)
        return Completion(data=out, usage=usage)

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._stream(body)

    @upstream_call
    async def _stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        headers, key = self._headers()
        headers["accept"] = "text/event-stream"
        payload = self._request(body, stream=True)
        json_tool = _json_tool_name(body, self.model)
        json_blocks: set[int] = set()  # JSON mode: this tool's input streams as content
        cf = ChunkFactory(self.model.model)
        tokens_in: int | None = None
        tokens_out: int | None = None
        stop_reason: str | None = None
        tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        out_chars = 0
        stopped = False
        deadline = Deadline(self._limits, self._label)
        async with contextlib.AsyncExitStack() as stack:
            resp = await deadline.run(stack.enter_async_context(self._client.stream(
                "POST", f"{self._base}/v1/messages", content=payload, headers=headers)))
            if resp.status_code >= 400:
                raise self._http_error(resp, await deadline.run(resp.aread()), key)
            async for event, raw in deadline.events(iter_sse(resp, self._limits.max_event_bytes)):
                data = _object(orjson.loads(raw), "event")
                kind = data.get("type") or event
                if kind == "message_start":
                    msg = _object(data["message"], "message_start message")
                    cf = ChunkFactory(str(msg.get("model") or self.model.model), _opt_str(msg.get("id")))
                    u = msg.get("usage")
                    if isinstance(u, dict):
                        tokens_in = _usage(u).prompt_tokens
                    yield cf.chunk({"role": "assistant", "content": ""})
                elif kind == "content_block_start":
                    block = _object(data["content_block"], "content_block")
                    if block.get("type") == "tool_use" and json_tool is not None and block.get("name") == json_tool:
                        json_blocks.add(_int(data["index"]))
                    elif block.get("type") == "tool_use":
                        i = tool_index[_int(data["index"])] = len(tool_index)
                        yield cf.chunk({"tool_calls": [{"index": i, "id": _str(block["id"], "tool_use id"),
                                                        "type": "function",
                                                        "function": {"name": _str(block["name"], "tool_use name"),
                                                                     "arguments": ""}}]})
                    elif block.get("type") == "text" and block.get("text"):
                        text = _str(block["text"], "text block")
                        out_chars += len(text)
                        yield cf.chunk({"content": text})
                elif kind == "content_block_delta":
                    delta = _object(data["delta"], "delta")
                    if delta.get("type") == "text_delta":
                        text = _str(delta["text"], "text_delta")
                        out_chars += len(text)
                        yield cf.chunk({"content": text})
                    elif delta.get("type") == "input_json_delta" and data.get("index") in json_blocks:
                        part = _str(delta["partial_json"], "input_json_delta")
                        out_chars += len(part)
                        yield cf.chunk({"content": part})
                    elif delta.get("type") == "input_json_delta" and data.get("index") in tool_index:
                        part = _str(delta["partial_json"], "input_json_delta")
                        out_chars += len(part)
                        yield cf.chunk({"tool_calls": [{"index": tool_index[data["index"]],
                                                        "function": {"arguments": part}}]})
                elif kind == "message_delta":
                    d = data.get("delta")
                    stop_reason = _opt_str(d.get("stop_reason") if isinstance(d, dict) else None) or stop_reason
                    u = data.get("usage")
                    if isinstance(u, dict) and u.get("output_tokens") is not None:
                        tokens_out = token_count(u["output_tokens"])
                elif kind == "message_stop":
                    stopped = True
                    break
                elif kind == "error":
                    raise self._event_error(data, key)
        if not stopped:
            raise UnavailableError(f"anthropic {self.model.id}: stream ended before message_stop",
                                   provider=self.name, model=self.model.id)
        if json_blocks and stop_reason == "tool_use":
            stop_reason = "end_turn"  # JSON mode: the forced tool was the answer
        finish = "tool_calls" if tool_index else finish_reason_of(stop_reason)
        yield cf.chunk({}, finish)
        yield cf.usage_chunk(Usage(
            tokens_in if tokens_in is not None else estimate_tokens(prompt_chars(body.get("messages"))),
            tokens_out if tokens_out is not None else estimate_tokens(out_chars)))

    @upstream_call
    async def list_models(self) -> list[str]:
        headers, key = self._headers()
        resp = await Deadline(self._limits, self._label).run(
            self._client.get(f"{self._base}/v1/models", headers=headers))
        if resp.status_code >= 400:
            raise self._http_error(resp, resp.content, key)
        return [str(m["id"]) for m in orjson.loads(resp.content)["data"]]
