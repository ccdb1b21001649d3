"""OpenAI-compatible upstreams (OpenAI, Groq, llama.cpp server, vLLM, LM Studio) over raw HTTP.

The hot path of the stack: the client's body goes upstream as-is except `model` (and the
stream flags), so every OpenAI field the upstream knows (tools, response_format, seed, ...)
works without this module knowing it. No SDK: one pooled client, orjson, SSE parsed by hand.
Plain-http upstreams with no proxy (self-hosted models: the router's most frequent hop) go
through the lean `http1.Http1Client`; https, proxies and injected transports go through httpx.
`WILTON_UPSTREAM_HTTP=httpx` forces httpx everywhere (an escape hatch, and the benchmark's A/B).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from wilton_core.config import ModelConfig
from wilton_core.errors import ProviderError, UnavailableError
from wilton_core.providers._common import (
    CONNECT_TIMEOUT_S,
    POOL_LIMITS,
    ChunkFactory,
    check_reencodable,
    content_text,
    dumps,
    estimate_tokens,
    iter_sse,
    make_client,
    prompt_chars,
)
from wilton_core.providers.base import Embeddings, check_embeddings
from wilton_core.providers.errors_map import ErrorScope, error_from_http, upstream_call
from wilton_core.providers.http1 import Http1Client, UpstreamClient, UpstreamResponse, wants_http1
from wilton_core.providers.limits import Deadline, UpstreamLimits
from wilton_core.types import Completion, Usage

__all__ = ["DEFAULT_OPENAI_BASE_URL", "OpenAICompatProvider"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


def _sanitised_usage(data: dict[str, Any], usage: Usage) -> None:
    """Put the clamped counts in the reply the client sees (its other usage fields pass through)."""
    u = data.get("usage")
    data["usage"] = {**u, **usage.as_openai()} if isinstance(u, dict) else usage.as_openai()


def _choice_problem(c: Any, key: str) -> str | None:
    """Why one choice of a reply (key "message") or a chunk (key "delta") is unusable, or None."""
    if not isinstance(c, dict):
        return "a choice is not an object"
    part = c.get(key)
    if part is None:
        return None
    if not isinstance(part, dict):
        return f"choice {key} is not an object"
    if not isinstance(part.get("content"), str | None):
        return f"choice {key}.content is not a string"
    calls = part.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(
            isinstance(tc, dict) and isinstance(tc.get("function", {}), dict) for tc in calls)):
        return f"choice {key}.tool_calls is not a list of tool calls"
    return None


class OpenAICompatProvider:
    name = "openai"

    def __init__(
        self,
        model: ModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        self.model = model
        self._environ = environ
        self._limits = limits or UpstreamLimits.of(model)
        self._label = f"{self.name} {model.id}"
        self._base = (model.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")
        self._owns_client = client is None
        self._client: UpstreamClient = client if client is not None else self._make_client(transport)

    def _make_client(self, transport: httpx.AsyncBaseTransport | None) -> UpstreamClient:
        env = os.environ if self._environ is None else self._environ
        if transport is None and env.get("WILTON_UPSTREAM_HTTP", "auto") != "httpx" and wants_http1(self._base):
            return Http1Client(self._base, timeout_s=self.model.timeout_s,
                               connect_timeout_s=min(CONNECT_TIMEOUT_S, self.model.timeout_s),
                               max_connections=POOL_LIMITS.max_connections or 128,
                               keepalive_expiry=POOL_LIMITS.keepalive_expiry or 30.0,
                               max_response_bytes=self._limits.max_response_bytes,
                               max_line_bytes=self._limits.max_event_bytes, label=self._label)
        return make_client(self.model, transport, self._limits)

    # -- plumbing -------------------------------------------------------------------------

    def error_scope(self) -> ErrorScope:
        return ErrorScope(self.name, self.model.id, (self.model.api_key(self._environ),))

    def _headers(self) -> tuple[dict[str, str], str | None]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = self.model.api_key(self._environ)
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers, key

    def _body(self, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        out = dict(body)
        out["model"] = self.model.model
        if stream:
            out["stream"] = True
            opts = dict(out.get("stream_options") or {})
            # Always ask: the ledger needs real token counts even when the client did not.
            opts["include_usage"] = True
            out["stream_options"] = opts
        else:
            out.pop("stream", None)
            out.pop("stream_options", None)
        return out

    def _http_error(self, resp: UpstreamResponse, body: bytes, key: str | None) -> ProviderError:
        return error_from_http(resp.status_code, resp.headers, body, provider=self.name,
                               model=self.model.id, secrets=(key,))

    def _malformed(self, why: str) -> UnavailableError:
        return UnavailableError(f"{self.name} {self.model.id}: malformed reply: {why}",
                                provider=self.name, model=self.model.id)

    # -- Provider -------------------------------------------------------------------------

    @upstream_call
    async def complete(self, body: Mapping[str, Any]) -> Completion:
        headers, key = self._headers()
        with self.error_scope().request():
            payload = dumps(self._body(body, False))
        deadline = Deadline(self._limits, self._label)
        resp = await deadline.run(self._client.post(f"{self._base}/chat/completions", content=payload,
                                                    headers=headers))
        raw = resp.content
        if resp.status_code >= 400:
            raise self._http_error(resp, raw, key)
        data = orjson.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            if isinstance(data, dict) and "error" in data:  # some servers send errors with HTTP 200
                raise error_from_http(502, resp.headers, data, provider=self.name, model=self.model.id,
                                      secrets=(key,))
            raise self._malformed("no choices")
        for c in data["choices"]:
            if (why := _choice_problem(c, "message")) is not None:
                raise self._malformed(why)
        check_reencodable(data, raw)
        usage = Usage.from_openai(data.get("usage"))
        if usage is None:
            out_chars = sum(len(content_text((c.get("message") or {}).get("content"))) for c in data["choices"])
            usage = Usage(estimate_tokens(prompt_chars(body.get("messages"))), estimate_tokens(out_chars))
        _sanitised_usage(data, usage)
        return Completion(data=data, usage=usage)

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._stream(body)

    @upstream_call
    async def _stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        headers, key = self._headers()
        headers["accept"] = "text/event-stream"
        with self.error_scope().request():
            payload = dumps(self._body(body, True))
        usage: Usage | None = None
        factory: ChunkFactory | None = None
        out_chars = 0
        finished = False
        done = False
        deadline = Deadline(self._limits, self._label)
        async with contextlib.AsyncExitStack() as stack:
            resp = await deadline.run(stack.enter_async_context(
                self._client.stream("POST", f"{self._base}/chat/completions", content=payload, headers=headers)))
            if resp.status_code >= 400:
                raise self._http_error(resp, await deadline.run(resp.aread()), key)
            async for _event, data in deadline.events(iter_sse(resp, self._limits.max_event_bytes)):
                if data.strip() == "[DONE]":
                    done = True
                    break
                chunk = orjson.loads(data)
                if not isinstance(chunk, dict):
                    raise self._malformed("chunk is not an object")
                if "error" in chunk and not chunk.get("choices"):
                    err = chunk["error"]
                    code = err.get("code") if isinstance(err, dict) else None
                    status = code if isinstance(code, int) and 400 <= code < 600 else 502
                    raise error_from_http(status, {}, chunk, provider=self.name, model=self.model.id,
                                          secrets=(key,))
                check_reencodable(chunk, data)
                if factory is None:
                    factory = ChunkFactory(str(chunk.get("model") or self.model.model),
                                           chunk.get("id"), chunk.get("created"))
                u = Usage.from_openai(chunk.pop("usage", None))
                if u is not None:
                    usage = u
                choices = chunk.get("choices")
                if not choices:
                    continue  # the usage-only chunk: re-emitted last, in our own shape
                if not isinstance(choices, list):
                    raise self._malformed("chunk choices is not a list")
                for c in choices:
                    # the hot path: the common shape checked inline, anything unusual in full
                    delta = c.get("delta") if type(c) is dict else None
                    if type(delta) is dict and not delta.get("tool_calls"):
                        content = delta.get("content")
                        if type(content) is str:
                            out_chars += len(content)
                        elif content is not None:
                            raise self._malformed("choice delta.content is not a string")
                    else:
                        if (why := _choice_problem(c, "delta")) is not None:
                            raise self._malformed(why)
                        delta = c.get("delta") or {}
                        out_chars += len(delta.get("content") or "")
                        for tc in delta.get("tool_calls") or ():
                            args = (tc.get("function") or {}).get("arguments")
                            out_chars += len(args) if isinstance(args, str) else 0
                    if c.get("finish_reason"):
                        finished = True
                yield chunk
        if not done and not finished:
            raise UnavailableError(f"{self.name} {self.model.id}: stream ended before completion",
                                   provider=self.name, model=self.model.id)
        if usage is None:
            usage = Usage(estimate_tokens(prompt_chars(body.get("messages"))), estimate_tokens(out_chars))
        yield (factory or ChunkFactory(self.model.model)).usage_chunk(usage)

    @upstream_call
    async def embed(self, inputs: list[str], dimensions: int | None = None) -> Embeddings:
        """POST {base}/embeddings (OpenAI, vLLM, llama.cpp server started with embeddings on)."""
        headers, key = self._headers()
        req: dict[str, Any] = {"model": self.model.model, "input": inputs, "encoding_format": "float"}
        if dimensions is not None:
            req["dimensions"] = dimensions
        resp = await Deadline(self._limits, self._label).run(
            self._client.post(f"{self._base}/embeddings", content=dumps(req), headers=headers))
        if resp.status_code >= 400:
            raise self._http_error(resp, resp.content, key)
        data = orjson.loads(resp.content)
        items = sorted(data["data"], key=lambda d: d.get("index", 0))
        vectors = check_embeddings([d["embedding"] for d in items], len(inputs), provider=self.name,
                                   model=self.model.id)
        u = data.get("usage") if isinstance(data, dict) else None
        tokens = Usage.from_openai(u) if isinstance(u, dict) and u.get("prompt_tokens") is not None else None
        return Embeddings(vectors, tokens or Usage(estimate_tokens(sum(len(t) for t in inputs)), 0))

    @upstream_call
    async def list_models(self) -> list[str]:
        headers, key = self._headers()
        resp = await Deadline(self._limits, self._label).run(self._client.get(f"{self._base}/models",
                                                                             headers=headers))
        if resp.status_code >= 400:
            raise self._http_error(resp, resp.content, key)
        data = orjson.loads(resp.content)
        return [str(m["id"]) for m in data["data"]]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
