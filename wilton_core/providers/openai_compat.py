"""OpenAI-compatible upstreams (OpenAI, Groq, llama.cpp server, vLLM, LM Studio) over raw HTTP.

The hot path of the stack: the client's body goes upstream as-is except `model` (and the
stream flags), so every OpenAI field the upstream knows (tools, response_format, seed, ...)
works without this module knowing it. No SDK: one pooled client, orjson, SSE parsed by hand.
Plain-http upstreams with no proxy (self-hosted models: the router's most frequent hop) go
through the lean `http1.Http1Client`; https, proxies and injected transports go through httpx.
`WILTON_UPSTREAM_HTTP=httpx` forces httpx everywhere (an escape hatch, and the benchmark's A/B).
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
    CONNECT_TIMEOUT_S,
    POOL_LIMITS,
    ChunkFactory,
    content_text,
    dumps,
    estimate_tokens,
    iter_sse,
    make_client,
    prompt_chars,
)
from wilton_core.providers.base import Embeddings, check_embeddings
from wilton_core.providers.errors_map import error_from_exception, error_from_http
from wilton_core.providers.http1 import Http1Client, wants_http1
from wilton_core.types import Completion, Usage

__all__ = ["DEFAULT_OPENAI_BASE_URL", "OpenAICompatProvider"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


def _usage_of(data: Mapping[str, Any]) -> Usage | None:
    u = data.get("usage")
    if not isinstance(u, dict):
        return None
    return Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))


class OpenAICompatProvider:
    name = "openai"

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
        self._base = (model.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")
        self._owns_client = client is None
        self._client: Any = client if client is not None else self._make_client(transport)

    def _make_client(self, transport: httpx.AsyncBaseTransport | None) -> Any:
        env = os.environ if self._environ is None else self._environ
        if transport is None and env.get("WILTON_UPSTREAM_HTTP", "auto") != "httpx" and wants_http1(self._base):
            return Http1Client(self._base, timeout_s=self.model.timeout_s,
                               connect_timeout_s=min(CONNECT_TIMEOUT_S, self.model.timeout_s),
                               max_connections=POOL_LIMITS.max_connections or 128,
                               keepalive_expiry=POOL_LIMITS.keepalive_expiry or 30.0)
        return make_client(self.model, transport)

    # -- plumbing -------------------------------------------------------------------------

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

    def _http_error(self, resp: Any, body: bytes, key: str | None) -> ProviderError:
        return error_from_http(resp.status_code, resp.headers, body, provider=self.name,
                               model=self.model.id, secrets=(key,))

    def _malformed(self, why: str) -> UnavailableError:
        return UnavailableError(f"{self.name} {self.model.id}: malformed reply: {why}",
                                provider=self.name, model=self.model.id)

    # -- Provider -------------------------------------------------------------------------

    async def complete(self, body: Mapping[str, Any]) -> Completion:
        headers, key = self._headers()
        try:
            resp = await self._client.post(f"{self._base}/chat/completions",
                                           content=dumps(self._body(body, False)), headers=headers)
            raw = resp.content
            if resp.status_code >= 400:
                raise self._http_error(resp, raw, key)
            data = orjson.loads(raw)
        except ProviderError:
            raise
        except Exception as e:
            raise error_from_exception(e, provider=self.name, model=self.model.id, secrets=(key,)) from e
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            if isinstance(data, dict) and "error" in data:  # some servers send errors with HTTP 200
                raise error_from_http(502, resp.headers, data, provider=self.name, model=self.model.id,
                                      secrets=(key,))
            raise self._malformed("no choices")
        usage = _usage_of(data)
        if usage is None:
            out_chars = sum(len(content_text((c.get("message") or {}).get("content")))
                            for c in data["choices"] if isinstance(c, dict))
            usage = Usage(estimate_tokens(prompt_chars(body.get("messages"))), estimate_tokens(out_chars))
            data["usage"] = usage.as_openai()
        return Completion(data=data, usage=usage)

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._stream(body)

    async def _stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        headers, key = self._headers()
        headers["accept"] = "text/event-stream"
        usage: Usage | None = None
        factory: ChunkFactory | None = None
        out_chars = 0
        finished = False
        done = False
        try:
            async with self._client.stream("POST", f"{self._base}/chat/completions",
                                           content=dumps(self._body(body, True)), headers=headers) as resp:
                if resp.status_code >= 400:
                    raise self._http_error(resp, await resp.aread(), key)
                async for _event, data in iter_sse(resp):
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
                    if factory is None:
                        factory = ChunkFactory(str(chunk.get("model") or self.model.model),
                                               chunk.get("id"), chunk.get("created"))
                    u = _usage_of(chunk)
                    if u is not None:
                        usage = u
                    chunk.pop("usage", None)
                    choices = chunk.get("choices")
                    if not choices:
                        continue  # the usage-only chunk: re-emitted last, in our own shape
                    for c in choices:
                        delta = c.get("delta") or {}
                        out_chars += len(delta.get("content") or "")
                        for tc in delta.get("tool_calls") or ():
                            out_chars += len((tc.get("function") or {}).get("arguments") or "")
                        if c.get("finish_reason"):
                            finished = True
                    yield chunk
        except ProviderError:
            raise
        except Exception as e:
            raise error_from_exception(e, provider=self.name, model=self.model.id, secrets=(key,)) from e
        if not done and not finished:
            raise UnavailableError(f"{self.name} {self.model.id}: stream ended before completion",
                                   provider=self.name, model=self.model.id)
        if usage is None:
            usage = Usage(estimate_tokens(prompt_chars(body.get("messages"))), estimate_tokens(out_chars))
        yield (factory or ChunkFactory(self.model.model)).usage_chunk(usage)

    async def embed(self, inputs: list[str], dimensions: int | None = None) -> Embeddings:
        """POST {base}/embeddings (OpenAI, vLLM, llama.cpp server started with embeddings on)."""
        headers, key = self._headers()
        req: dict[str, Any] = {"model": self.model.model, "input": inputs, "encoding_format": "float"}
        if dimensions is not None:
            req["dimensions"] = dimensions
        try:
            resp = await self._client.post(f"{self._base}/embeddings", content=dumps(req), headers=headers)
            if resp.status_code >= 400:
                raise self._http_error(resp, resp.content, key)
            data = orjson.loads(resp.content)
            items = sorted(data["data"], key=lambda d: d.get("index", 0))
            vectors = [d["embedding"] for d in items]
        except ProviderError:
            raise
        except Exception as e:
            raise error_from_exception(e, provider=self.name, model=self.model.id, secrets=(key,)) from e
        vectors = check_embeddings(vectors, len(inputs), provider=self.name, model=self.model.id)
        u = data.get("usage") if isinstance(data, dict) else None
        tokens = Usage.from_openai(u) if isinstance(u, dict) and u.get("prompt_tokens") is not None else None
        return Embeddings(vectors, tokens or Usage(estimate_tokens(sum(len(t) for t in inputs)), 0))

    async def list_models(self) -> list[str]:
        headers, key = self._headers()
        try:
            resp = await self._client.get(f"{self._base}/models", headers=headers)
            if resp.status_code >= 400:
                raise self._http_error(resp, resp.content, key)
            data = orjson.loads(resp.content)
            return [str(m["id"]) for m in data["data"]]
        except ProviderError:
            raise
        except Exception as e:
            raise error_from_exception(e, provider=self.name, model=self.model.id, secrets=(key,)) from e

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
