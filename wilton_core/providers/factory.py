"""Provider name (the config's `provider` key) → class, and the one way to build a provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from wilton_core.config import ModelConfig, RoutingConfig
from wilton_core.errors import ConfigError
from wilton_core.providers.anthropic import AnthropicProvider
from wilton_core.providers.base import Provider
from wilton_core.providers.dummy import DummyProvider
from wilton_core.providers.gemini import GeminiProvider
from wilton_core.providers.http_base import UpstreamHttp
from wilton_core.providers.limits import UpstreamLimits
from wilton_core.providers.minilm import MiniLMProvider
from wilton_core.providers.ollama import OllamaProvider
from wilton_core.providers.openai_compat import OpenAICompatProvider

__all__ = ["PROVIDER_CLASSES", "make_provider"]

PROVIDER_CLASSES: dict[str, type[Any]] = {
    "openai": OpenAICompatProvider,
    "ollama": OllamaProvider,
    "gemini": GeminiProvider,
    "anthropic": AnthropicProvider,
    "dummy": DummyProvider,
    "minilm": MiniLMProvider,
}


def make_provider(
    model: ModelConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
    routing: RoutingConfig | None = None,
    upstream_http: UpstreamHttp = "auto",
) -> Provider:
    """A provider for `model`; no network is touched until its first call.

    `routing` supplies the upstream limits the model does not set itself (max_response_bytes,
    max_event_bytes, max_duration_s); without it the [routing] defaults apply. `upstream_http`
    is `Settings.upstream_http`: "httpx" keeps plain-http upstreams off the lean http1 client.
    """
    try:
        cls = PROVIDER_CLASSES[model.provider]
    except KeyError:
        raise ConfigError(
            f"model '{model.id}': unknown provider '{model.provider}'; "
            f"use one of {', '.join(sorted(PROVIDER_CLASSES))}"
        ) from None
    limits = UpstreamLimits.of(model, routing)
    provider: Provider = cls(model, transport=transport, environ=environ, limits=limits, upstream_http=upstream_http)
    return provider
