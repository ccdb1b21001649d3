"""Ollama's native API (/api/chat with NDJSON streaming, /api/tags), translated to and from OpenAI shapes.

The native API rather than Ollama's /v1 shim because it reports real token counts
(prompt_eval_count/eval_count) on every reply and takes images as plain base64 lists.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from wilton_core.config import ModelConfig
from wilton_core.errors import ProviderError, UnavailableError
from wilton_core.providers._common import (
    ChunkFactory,
    dumps,
    estimate_tokens,
    make_client,
    new_id,
    parse_data_url,
    prompt_chars,
    stop_list,
)
from wilton_core.providers.base import Embeddings, check_embeddings
from wilton_core.providers.errors_map import error_from_exception, error_from_http
from wilton_core.types import Completion, Usage

__all__ = ["OllamaProvider", "ollama_base_url", "to_ollama_request"]

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
_OPTION_KEYS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")


def ollama_base_url(configured: str | None, environ: Mapping[str, str]) -> str:
    url = configured or environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_URL
    if "://" not in url:  # OLLAMA_HOST is often "host:port"
        url = "http://" + url
    # A base_url copied from an OpenAI-compatible setup points at Ollama's /v1 shim.
    return url.rstrip("/").removesuffix("/v1")


def _tool_names_by_id(messages: list[dict[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for m in messages:
        for tc in m.get("tool_calls") or ():
            if isinstance(tc, dict) and tc.get("id"):
                names[tc["id"]] = (tc.get("function") or {}).get("name", "")
    return names


def _args(args: Any) -> Any:
    """Ollama wants tool arguments as an object; OpenAI history carries a JSON string."""
    if not isinstance(args, str):
        return args or {}
    try:
        return orjson.loads(args or "{}")
    except orjson.JSONDecodeError:
        return {}


def _message(m: dict[str, Any], names: dict[str, str], model_id: str) -> dict[str, Any]:
    role = m.get("role", "user")
    out: dict[str, Any] = {"role": "system" if role == "developer" else role}
    content = m.get("content")
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
    if role == "assistant" and m.get("tool_calls"):
        calls = []
        for tc in m["tool_calls"]:
            fn = tc.get("function") or {}
            args = fn.get("arguments") or "{}"
            calls.append({"function": {"name": fn.get("name", ""), "arguments": _args(args)}})
        out["tool_calls"] = calls
    if role == "tool" and m.get("tool_call_id") in names:
        out["tool_name"] = names[m["tool_call_id"]]
    return out


def to_ollama_request(body: Mapping[str, Any], model: ModelConfig, stream: bool) -> dict[str, Any]:
    """The /api/chat body for an OpenAI chat-completions body (pure)."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    names = _tool_names_by_id(messages)
    req: dict[str, Any] = {
        "model": model.model,
        "messages": [_message(m, names, model.id) for m in messages],
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
    if body.get("tools") and body.get("tool_choice") != "none":
        req["tools"] = body["tools"]  # Ollama takes the OpenAI tool shape as is
    rf = body.get("response_format")
    if isinstance(rf, dict):
        if rf.get("type") == "json_object":
            req["format"] = "json"
        elif rf.get("type") == "json_schema":
            req["format"] = (rf.get("json_schema") or {}).get("schema") or "json"
    return req


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for i, tc in enumerate(message.get("tool_calls") or ()):
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        calls.append({
            "index": i,
            "id": new_id("call_"),
            "type": "function",
            "function": {"name": fn.get("name", ""),
                         "arguments": args if isinstance(args, str) else orjson.dumps(args or {}).decode()},
        })
    return calls


def _finish(data: Mapping[str, Any], has_tools: bool) -> str:
    if has_tools:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


class OllamaProvider:
    name = "ollama"

    def __init__(
        self,
        model: ModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self._environ = environ
        self._base = ollama_base_url(model.base_url, os.environ if environ is None else environ)
        self._owns_client = client is None
        self._client = client if client is not None else make_client(model, transport)

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        # Local Ollama needs no key; ollama.com and auth proxies take a Bearer token.
        key = self.model.api_key(self._environ)
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _secrets(self) -> tuple[str | None]:
        return (self.model.api_key(self._environ),)

    def _fail(self, e: Exception) -> ProviderError:
        return error_from_exception(e, provider=self.name, model=self.model.id, secrets=self._secrets())

    def _http_error(self, resp: httpx.Response, raw: bytes | dict[str, Any]) -> ProviderError:
        return error_from_http(resp.status_code, resp.headers, raw, provider=self.name, model=self.model.id,
                               secrets=self._secrets())

    def _usage(self, data: Mapping[str, Any], body: Mapping[str, Any], out_chars: int) -> Usage:
        p, c = data.get("prompt_eval_count"), data.get("eval_count")
        return Usage(int(p) if p is not None else estimate_tokens(prompt_chars(body.get("messages"))),
                     int(c) if c is not None else estimate_tokens(out_chars))

    async def complete(self, body: Mapping[str, Any]) -> Completion:
        req = to_ollama_request(body, self.model, stream=False)
        try:
            resp = await self._client.post(f"{self._base}/api/chat", content=dumps(req), headers=self._headers())
            if resp.status_code >= 400:
                raise self._http_error(resp, resp.content)
            data = orjson.loads(resp.content)
            if "error" in data:
                raise error_from_http(502, {}, data, provider=self.name, model=self.model.id,
                                      secrets=self._secrets())
            msg = data["message"]
            text = msg.get("content") or ""
        except ProviderError:
            raise
        except Exception as e:
            raise self._fail(e) from e
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

    async def _stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        req = to_ollama_request(body, self.model, stream=True)
        cf = ChunkFactory(self.model.model)
        out_chars = 0
        n_calls = 0
        final: dict[str, Any] | None = None
        try:
            async with self._client.stream("POST", f"{self._base}/api/chat", content=dumps(req),
                                           headers=self._headers()) as resp:
                if resp.status_code >= 400:
                    raise self._http_error(resp, await resp.aread())
                first = True
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    data = orjson.loads(line)
                    if "error" in data:
                        raise error_from_http(502, {}, data, provider=self.name, model=self.model.id,
                                      secrets=self._secrets())
                    msg = data.get("message") or {}
                    delta: dict[str, Any] = {"role": "assistant"} if first else {}
                    text = msg.get("content") or ""
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
        except ProviderError:
            raise
        except Exception as e:
            raise self._fail(e) from e
        if final is None:
            raise UnavailableError(f"{self.name} {self.model.id}: stream ended before done",
                                   provider=self.name, model=self.model.id)
        yield cf.chunk({}, _finish(final, n_calls > 0))
        yield cf.usage_chunk(self._usage(final, body, out_chars))

    async def embed(self, inputs: list[str], dimensions: int | None = None) -> Embeddings:
        """POST {base}/api/embed (Ollama >= 0.3: a batch of inputs, L2-normalised vectors)."""
        req: dict[str, Any] = {"model": self.model.model, "input": inputs}
        if dimensions is not None:
            req["dimensions"] = dimensions
        try:
            resp = await self._client.post(f"{self._base}/api/embed", content=dumps(req), headers=self._headers())
            if resp.status_code >= 400:
                raise self._http_error(resp, resp.content)
            data = orjson.loads(resp.content)
            vectors = data["embeddings"]
        except ProviderError:
            raise
        except Exception as e:
            raise self._fail(e) from e
        vectors = check_embeddings(vectors, len(inputs), provider=self.name, model=self.model.id)
        p = data.get("prompt_eval_count")
        return Embeddings(vectors, Usage.of(p, 0) if p is not None else Usage(
            estimate_tokens(sum(len(t) for t in inputs)), 0))

    async def list_models(self) -> list[str]:
        try:
            resp = await self._client.get(f"{self._base}/api/tags", headers=self._headers())
            if resp.status_code >= 400:
                raise self._http_error(resp, resp.content)
            return [str(m.get("name") or m["model"]) for m in orjson.loads(resp.content)["models"]]
        except ProviderError:
            raise
        except Exception as e:
            raise self._fail(e) from e

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
