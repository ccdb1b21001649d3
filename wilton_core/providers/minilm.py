"""The embedded embedding model as a provider: all-MiniLM-L6-v2 in process (see localembed.py).

Embeddings only: a chat request for it is refused (the router never routes chat to a model of
kind "embedding"; this is the last guard). The encoder runs in a worker thread so the event
loop keeps serving other requests while it computes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from wilton_core.config import ModelConfig
from wilton_core.errors import BadRequestError, ConfigError, UnavailableError
from wilton_core.providers.base import Embeddings
from wilton_core.providers.limits import UpstreamLimits
from wilton_core.types import Completion, Usage

__all__ = ["MiniLMProvider"]


class MiniLMProvider:
    name = "minilm"

    def __init__(self, model: ModelConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 environ: Mapping[str, str] | None = None, limits: UpstreamLimits | None = None,
                 upstream_http: str = "auto") -> None:
        # in-process: no upstream, so the transport and the upstream limits do not apply
        self.model = model
        self._encoder: Any = None

    def _refuse(self) -> BadRequestError:
        return BadRequestError(f"minilm {self.model.id}: an embedding model cannot chat", provider=self.name,
                               model=self.model.id, status=400)

    async def complete(self, body: Mapping[str, Any]) -> Completion:
        raise self._refuse()

    async def _no_stream(self) -> AsyncIterator[dict[str, Any]]:
        raise self._refuse()
        yield {}  # pragma: no cover - makes this an async generator

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._no_stream()

    async def embed(self, inputs: list[str], dimensions: int | None = None) -> Embeddings:
        from wilton_core.localembed import MiniLM

        if dimensions is not None and dimensions != 384:
            raise BadRequestError(f"minilm {self.model.id}: 'dimensions' must be 384 (or omitted)",
                                  provider=self.name, model=self.model.id, status=400)
        try:
            if self._encoder is None:
                self._encoder = MiniLM()
            vectors, counts = await asyncio.to_thread(self._encoder.embed, inputs)
        except ConfigError as e:  # the [embed] extra is missing: an outage of this model, said plainly
            raise UnavailableError(f"minilm {self.model.id}: {e}", provider=self.name, model=self.model.id) from e
        return Embeddings(vectors.tolist(), Usage(sum(counts), 0))

    async def list_models(self) -> list[str]:
        return [self.model.model]

    async def aclose(self) -> None:
        self._encoder = None
