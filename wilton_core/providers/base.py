"""The provider interface: one async client per configured model, OpenAI shapes at the boundary.

`complete` returns a `Completion` whose `data` is an OpenAI `chat.completion` object;
`stream` yields OpenAI `chat.completion.chunk` dicts and, last, one chunk carrying `usage`
(with empty `choices`) whether or not the upstream sent one — the gateway decides whether the
client asked for it. Every failure is raised as a `wilton_core.errors.ProviderError` subclass.
I/O roots (`transport`, `environ`) are constructor parameters so tests pass fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

from wilton_core.config import ModelConfig
from wilton_core.types import Completion

__all__ = ["Provider"]


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
