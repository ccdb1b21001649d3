"""The provider interface: one async client per configured model, OpenAI shapes at the boundary.

`complete` returns a `Completion` whose `data` is an OpenAI `chat.completion` object;
`stream` yields OpenAI `chat.completion.chunk` dicts and, last, one chunk carrying `usage`
(with empty `choices`) whether or not the upstream sent one — the gateway decides whether the
client asked for it. Every failure is raised as a `wilton_core.errors.ProviderError` subclass.
I/O roots (`transport`, `environ`) are constructor parameters so tests pass fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from wilton_core.config import ModelConfig
from wilton_core.errors import UnavailableError
from wilton_core.types import Completion, Usage

__all__ = ["Embedder", "Embeddings", "Provider", "check_embeddings"]


@runtime_checkable
class Provider(Protocol):
    name: str
    model: ModelConfig

    async def complete(self, body: Mapping[str, Any]) -> Completion:
        """Non-streaming chat completion for an OpenAI-format request body.

        `body["model"]` is ignored: the provider sends `self.model.model` upstream.
        """
        ...

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Streaming chat completion; see module doc for the chunk contract."""
        ...

    async def list_models(self) -> list[str]:
        """Model names the upstream serves (discovery): /api/tags, /v1/models, ..."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Embeddings:
    """One vector per input, in input order, and the tokens the upstream counted (prompt only)."""

    vectors: list[list[float]]
    usage: Usage


@runtime_checkable
class Embedder(Protocol):
    """A provider that can embed text (OpenAI-compatible /v1/embeddings, Ollama /api/embed, MiniLM)."""

    async def embed(self, inputs: list[str], dimensions: int | None = None) -> Embeddings: ...


def check_embeddings(vectors: Any, n: int, *, provider: str, model: str) -> list[list[float]]:
    """The upstream's vectors if they are n equal-length lists of finite numbers, else UnavailableError
    (a malformed reply is the upstream's fault: the router must not pass garbage on)."""
    import math

    ok = isinstance(vectors, list) and len(vectors) == n and all(
        isinstance(v, list) and v and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                                          for x in v) for v in vectors)
    if ok and len({len(v) for v in vectors}) > 1:
        ok = False
    if not ok:
        raise UnavailableError(f"{provider} {model}: malformed embeddings reply", provider=provider, model=model)
    return [[float(x) for x in v] for v in vectors]
