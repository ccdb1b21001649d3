"""Ollama's native API (/api/chat with NDJSON streaming, /api/tags), translated to and from OpenAI shapes.

The native API rather than Ollama's /v1 shim because it reports real token counts
(prompt_eval_count/eval_count) on every reply and takes images as plain base64 lists.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from wilton_core.config import ModelConfig
from wilton_core.errors import ProviderError, ResponseTooLargeError, UnavailableError
from wilton_core.providers._common import (
    ChunkFactory,
    LineStream,
    RequestShape,
    dumps,
    estimate_tokens,
    new_id,
    parse_data_url,
    prompt_chars,
    stop_list,
)
from wilton_core.providers.base import Embeddings, check_embeddings
from wilton_core.providers.errors_map import error_from_http, upstream_call
from wilton_core.providers.http_base import HttpProvider
from wilton_core.providers.limits import Deadline
from wilton_core.types import Completion, Usage, token_count

__all__ = ["OllamaProvider", "ollama_base_url", "to_ollama_request"]

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
_OPTION_KEYS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")


def ollama_base_url(configured: str | None, environ: Mapping[str, str]) -> str:
    url = configured or environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_URL
    if "://" not in url:  # OLLAMA_HOST is often "host:port"
        url = "http://" + url
    # A base_url copied from an OpenAI-compatible setup points at Ollama's /v1 shim.
    return url.rstrip("/").removesuffix("/v1")


def _tool_names_by_id(messages: list[dict[str, Any]], shape: RequestShape) -> dict[str, str]:
    names: dict[str, str] = {}
    for i, m in enumerate(messages):
        for tc in shape.tool_calls(m, f"messages[{i}]"):
            if tc.get("id"):
                names[tc["id"]] = tc["function"].get("name", "")
    return names


def _args(args: Any) -> Any:
    """Ollama wants tool arguments as an object; OpenAI history carries a JSON string."""
    if not isinstance(args, str):
        return args or {}
    try:
        return orjson.loads(args or "{}")
    except orjson.JSONDecodeError:
        return {}


def _message(m: dict[str, Any], names: dict[str, str], model_id: str, shape: RequestShape,
             where: str) -> dict[str, Any]:
    role = m.get("role", "user")
    out: dict[str, Any] = {"role": "system" if role == "developer" else role}
    content = shape.parts(m.get("content"), f"{where}.content")
    if isinstance(content, list):
        texts: list[str] = []
        images: list[str] = []
        for part in content:
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                iu = part.get("image_url")
                url = iu.get("url") if isinstance(iu, dict) else iu
                images.append(parse_data_url(str(url), provider="ollama", model=model_id)[1])
        out["content"] = "\n".join(texts)
        if images:
            out["images"] = images
    else:
        out["content"] = content or ""
    calls = shape.tool_calls(m, where)
    if role == "assistant" and calls:
        out["tool_calls"] = [{"function": {"name": tc["function"].get("name", ""),
                                           "arguments": _args(tc["function"].get("arguments") or "{}")}}
                             for tc in calls]
    call_id = m.get("tool_call_id")
    if role == "tool" and isinstance(call_id, str) and call_id in names:
        out["tool_name"] = names[call_id]
    return out


def to_ollama_request(body: Mapping[str, Any], model: ModelConfig, stream: bool) -> dict[str, Any]:
    """The /api/chat body for an OpenAI chat-completions body (pure); BadRequestError for a wrong shape."""
    shape = RequestShape("ollama", model.id)
    messages = shape.messages(body)
    names = _tool_names_by_id(messages, shape)
    req: dict[str, Any] = {
        "model": model.model,
        "messages": [_message(m, names, model.id, shape, f"messages[{i}]") for i, m in enumerate(messages)],
        "stream": stream,
    }
    options: dict[str, Any] = {k: body[k] for k in _OPTION_KEYS if body.get(k) is not None}
    stops = stop_list(body.get("stop"))
    if stops:
        options["stop"] = stops
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or model.max_output_tokens
    if limit:
        options["num_predict"] = int(limit)
    if options:
        req["options"] = options
    if shape.tools(body) and body.get("tool_choice") != "none":
        req["tools"] = body["tools"]  # Ollama takes the OpenAI tool shape as is
    rf = body.get("response_format")
    if isinstance(rf, dict):
        if rf.get("type") == "json_object":
            req["format"] = "json"
        elif rf.get("type") == "json_schema":
            req["format"] = (rf.get("json_schema") or {}).get("schema") or "json"
    return req


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The OpenAI tool calls of an Ollama reply message (ValueError for a wrong shape: the reply's fault)."""
    raw = message.get("tool_calls") or []
    if not isinstance(raw, list):
        raise ValueError("message.tool_calls is not a list")
    calls = []
    for i, tc in enumerate(raw):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict):
            raise ValueError("a tool call has no function object")
        args = fn.get("arguments")
        calls.append({
            "index": i,
            "id": new_id("call_"),
            "type": "function",
            "function": {"name": str(fn.get("name") or ""),
                         "arguments": args if isinstance(args, str) else orjson.dumps(args or {}).decode()},
        })
    return calls


async def _ndjson_lines(resp: LineStream, max_line: int) -> AsyncIterator[str]:
    """The non-blank lines of an NDJSON stream: blank keep-alives yield nothing (and so do not
    reset the caller's idle timer); a line over `max_line` characters fails the stream."""
    async for line in resp.aiter_lines():
        if len(line) > max_line:
            raise ResponseTooLargeError(f"one stream line larger than max_event_bytes={max_line}")
        if line.strip():
            yield line


def _finish(data: Mapping[str, Any], has_tools: bool) -> str:
    if has_tools:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


class OllamaProvider(HttpProvider):
    name = "ollama"
    default_base_url = DEFAULT_OLLAMA_URL

    @classmethod
    def base_url_of(cls, model: ModelConfig, environ: Mapping[str, str]) -> str:
        return ollama_base_url(model.base_url, environ)

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        # Local Ollama needs no key; ollama.com and auth proxies take a Bearer token.
        key = self.api_key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _upstream_error(self, status: int, headers: Mapping[str, str], raw: bytes | dict[str, Any]) -> ProviderError:
        return error_from_http(status, headers, raw, provider=self.name, model=self.model.id,
                               secrets=self.error_scope().secrets)

    def _request(self, body: Mapping[str, Any], stream: bool) -> bytes:
        with self.error_scope().request():
            return dumps(to_ollama_request(body, self.model, stream=stream))

    def _usage(self, data: Mapping[str, Any], body: Mapping[str, Any], out_chars: int) -> Usage:
        p, c = data.get("prompt_eval_count"), data.get("eval_count")
        return Usage(token_count(p) if p is not None else estimate_tokens(prompt_chars(body.get("messages"))),
                     token_count(c) if c is not None else estimate_tokens(out_chars))

    @staticmethod
    def _reply_message(data: Any) -> tuple[dict[str, Any], str]:
        """(message, text) of one reply object; ValueError (a malformed reply) for a wrong shape."""
        if not isinstance(data, dict):
            raise ValueError("reply is not an object")
        msg = data.get("message") or {}
        if not isinstance(msg, dict):
            raise ValueError("message is not an object")
        text = msg.get("content") or ""
        if not isinstance(text, str):
            raise ValueError("message.content is not a string")
        return msg, text

    @upstream_call
    async def complete(self, body: Mapping[str, Any]) -> Completion:
        payload = self._request(body, stream=False)
        resp = await Deadline(self._limits, self._label).run(
            self._client.post(f"{self._base}/api/chat", content=payload, headers=self._headers()))
        if resp.status_code >= 400:
            raise self._upstream_error(resp.status_code, resp.headers, resp.content)
        data = orjson.loads(resp.content)
        if isinstance(data, dict) and "error" in data:
            raise self._upstream_error(502, {}, data)
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise ValueError("reply has no message object")
        msg, text = self._reply_message(data)
        calls = _tool_calls(msg)
        for c in calls:
            c.pop("index")
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        usage = self._usage(data, body, len(text))
        out = ChunkFactory(str(data.get("model") or self.model.model)).completion(
            message, _finish(data, bool(calls)), usage)
        return Completion(data=out, usage=usage)

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._stream(body)

    @upstream_call
    async def _stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        payload = self._request(body, stream=True)
        cf = ChunkFactory(self.model.model)
        out_chars = 0
        n_calls = 0
        final: dict[str, Any] | None = None
        deadline = Deadline(self._limits, self._label)
        async with contextlib.AsyncExitStack() as stack:
            resp = await deadline.run(stack.enter_async_context(self._client.stream(
                "POST", f"{self._base}/api/chat", content=payload, headers=self._headers())))
            if resp.status_code >= 400:
                raise self._upstream_error(resp.status_code, resp.headers, await deadline.run(resp.aread()))
            first = True
            async for line in deadline.events(_ndjson_lines(resp, self._limits.max_event_bytes)):
                data = orjson.loads(line)
                if isinstance(data, dict) and "error" in data:
                    raise self._upstream_error(502, {}, data)
                msg, text = self._reply_message(data)
                delta: dict[str, Any] = {"role": "assistant"} if first else {}
                if text or first:
                    delta["content"] = text
                calls = _tool_calls(msg)
                for c in calls:
                    c["index"] += n_calls
                    out_chars += len(c["function"]["arguments"])
                n_calls += len(calls)
                if calls:
                    delta["tool_calls"] = calls
                out_chars += len(text)
                if delta:
                    yield cf.chunk(delta)
                    first = False
                if data.get("done"):
                    final = data
                    break
        if final is None:
            raise UnavailableError(f"{self.name} {self.model.id}: stream ended before done",
                                   provider=self.name, model=self.model.id)
        yield cf.chunk({}, _finish(final, n_calls > 0))
        yield cf.usage_chunk(self._usage(final, body, out_chars))

    @upstream_call
    async def embed(self, inputs: list[str], dimensions: int | None = None) -> Embeddings:
        """POST {base}/api/embed (Ollama >= 0.3: a batch of inputs, L2-normalised vectors)."""
        req: dict[str, Any] = {"model": self.model.model, "input": inputs}
        if dimensions is not None:
            req["dimensions"] = dimensions
        resp = await Deadline(self._limits, self._label).run(
            self._client.post(f"{self._base}/api/embed", content=dumps(req), headers=self._headers()))
        if resp.status_code >= 400:
            raise self._upstream_error(resp.status_code, resp.headers, resp.content)
        data = orjson.loads(resp.content)
        vectors = check_embeddings(data["embeddings"], len(inputs), provider=self.name, model=self.model.id)
        p = data.get("prompt_eval_count")
        return Embeddings(vectors, Usage.of(p, 0) if p is not None else Usage(
            estimate_tokens(sum(len(t) for t in inputs)), 0))

    @upstream_call
    async def list_models(self) -> list[str]:
        resp = await Deadline(self._limits, self._label).run(
            self._client.get(f"{self._base}/api/tags", headers=self._headers()))
        if resp.status_code >= 400:
            raise self._upstream_error(resp.status_code, resp.headers, resp.content)
        return [str(m.get("name") or m["model"]) for m in orjson.loads(resp.content)["models"]]
