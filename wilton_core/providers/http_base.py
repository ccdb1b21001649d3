"""The one construction path of the upstream providers, and the upstream HTTP client seam.

OpenAI-compatible, Ollama, Anthropic and Gemini providers are all built from the same things —
the model's config, the environment its key is read from, the upstream limits, an optional
transport — and hold the same state (label, base URL, error scope). `UpstreamProvider` does
that once; a provider only says where its upstream is by default (`default_base_url`, or
`base_url_of` when it is more than a default) and, if it needs to, how its client is made.

`UpstreamClient` is what a provider calls: the subset of `httpx.AsyncClient` that
`http1.Http1Client` also implements, so the lean client and httpx are interchangeable and
typed behind one seam (no `Any`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Literal, Protocol

import httpx

from wilton_core.config import ModelConfig
from wilton_core.providers._common import LineStream, make_client
from wilton_core.providers.errors_map import ErrorScope
from wilton_core.providers.limits import UpstreamLimits

__all__ = ["HttpProvider", "UpstreamClient", "UpstreamHttp", "UpstreamProvider", "UpstreamResponse"]

# Which client serves plain-http upstreams: "auto" picks the lean http1 client where it applies,
# "httpx" forces httpx everywhere (Settings.upstream_http, WILTON_UPSTREAM_HTTP).
UpstreamHttp = Literal["auto", "httpx"]


class UpstreamResponse(LineStream, Protocol):
    """What a provider reads of an upstream reply (httpx.Response and http1.Http1Response)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...

    async def aread(self) -> bytes: ...


class UpstreamClient(Protocol):
    """What a provider calls on its pooled client (httpx.AsyncClient and http1.Http1Client)."""

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> UpstreamResponse: ...

    async def get(self, url: str, *, headers: Mapping[str, str]) -> UpstreamResponse: ...

    def stream(self, method: str, url: str, *, content: bytes,
               headers: Mapping[str, str]) -> AbstractAsyncContextManager[UpstreamResponse]: ...

    async def aclose(self) -> None: ...


class UpstreamProvider:
    """State every upstream provider is built with; subclasses set `name` and `default_base_url`."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(
        self,
        model: ModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        limits: UpstreamLimits | None = None,
        upstream_http: UpstreamHttp = "auto",
    ) -> None:
        self.model = model
        self._environ = environ
        self._transport = transport
        self._limits = limits or UpstreamLimits.of(model)
        self._upstream_http: UpstreamHttp = upstream_http
        self._label = f"{self.name} {model.id}"
        self._base = self.base_url_of(model, os.environ if environ is None else environ)

    @classmethod
    def base_url_of(cls, model: ModelConfig, environ: Mapping[str, str]) -> str:
        """The upstream's base URL: the model's own, else the provider's default (no trailing /)."""
        return (model.base_url or cls.default_base_url).rstrip("/")

    def api_key(self) -> str | None:
        return self.model.api_key(self._environ)

    def error_scope(self) -> ErrorScope:
        return ErrorScope(self.name, self.model.id, (self.api_key(),))


class HttpProvider(UpstreamProvider):
    """An upstream provider that owns one pooled HTTP client (or borrows the one it is given)."""

    def __init__(
        self,
        model: ModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        client: UpstreamClient | None = None,
        limits: UpstreamLimits | None = None,
        upstream_http: UpstreamHttp = "auto",
    ) -> None:
        super().__init__(model, transport=transport, environ=environ, limits=limits, upstream_http=upstream_http)
        self._owns_client = client is None
        self._client: UpstreamClient = client if client is not None else self._make_client()

    def _make_client(self) -> UpstreamClient:
        """The pooled httpx client with the model's timeouts and upstream limits."""
        return make_client(self.model, self._transport, self._limits)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
