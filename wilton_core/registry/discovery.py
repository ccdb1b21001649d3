"""Discovery: which models do the self-hosted upstreams actually serve?

Ollama answers on /api/tags, llama.cpp/vLLM on /v1/models; both are reached through the
providers' own `list_models()` so discovery exercises the same client code as routing. API
models (Groq, Gemini, OpenAI, Anthropic) are taken from the config: listing a paid catalogue
says nothing about whether our key works — `test_model` does that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from wilton_core.config import ModelConfig
from wilton_core.errors import ProviderError
from wilton_core.registry.registry import ProviderFactory, default_provider_factory, scrub

__all__ = ["DiscoveredModel", "DiscoveryReport", "discover", "list_upstream", "same_model_name"]


@dataclass(frozen=True, slots=True)
class DiscoveredModel:
    name: str                          # the upstream's model name
    provider: str
    base_url: str | None
    source: Literal["upstream", "config"]
    model_id: str | None = None        # the configured id serving this name, if any


@dataclass(slots=True)
class DiscoveryReport:
    models: list[DiscoveredModel] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)       # endpoint -> error kind: message
    missing: list[str] = field(default_factory=list)           # configured local ids not served

    def names_at(self, base_url: str | None) -> list[str]:
        return [d.name for d in self.models if d.base_url == base_url and d.source == "upstream"]


def same_model_name(configured: str, served: str) -> bool:
    """Ollama reports `dolphin-mistral:latest` for a model pulled as `dolphin-mistral`."""
    def norm(n: str) -> str:
        return n if ":" in n else n + ":latest"

    return configured == served or norm(configured) == norm(served)


def _probe_config(provider: str, base_url: str | None, api_key_env: Any = None) -> ModelConfig:
    return ModelConfig.model_validate(dict(
        id="discovery", provider=provider, model="discovery", base_url=base_url,
        api_key_env=api_key_env, tier="selfhost", is_local=True, timeout_s=10.0,
    ))


async def list_upstream(
    provider: str,
    base_url: str | None,
    *,
    api_key_env: str | list[str] | None = None,
    provider_factory: ProviderFactory | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> list[str]:
    """Model names served at one endpoint; raises ProviderError (or TimeoutError) on failure."""
    factory = provider_factory or default_provider_factory(environ=environ)
    p = factory(_probe_config(provider, base_url, api_key_env))
    try:
        return list(await asyncio.wait_for(p.list_models(), timeout))
    finally:
        await p.aclose()


async def discover(
    models: Sequence[ModelConfig],
    *,
    provider_factory: ProviderFactory | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> DiscoveryReport:
    """List every self-hosted endpoint once (concurrently) and the configured API models."""
    factory = provider_factory or default_provider_factory(environ=environ)
    report = DiscoveryReport()
    endpoints: dict[tuple[str, str | None], list[ModelConfig]] = {}
    for m in models:
        if m.is_local and m.provider in ("ollama", "openai"):
            endpoints.setdefault((m.provider, m.base_url), []).append(m)
        else:
            report.models.append(DiscoveredModel(m.model, m.provider, m.base_url, "config", m.id))

    async def one(key: tuple[str, str | None], ms: list[ModelConfig]) -> None:
        provider, base_url = key
        label = f"{provider} {base_url or '(default)'}"
        try:
            names = await list_upstream(provider, base_url, api_key_env=ms[0].api_key_env,
                                        provider_factory=factory, environ=environ, timeout=timeout)
        except TimeoutError:
            report.errors[label] = f"timeout: no answer within {timeout:g}s"
            report.missing.extend(m.id for m in ms)
            return
        except ProviderError as exc:
            report.errors[label] = scrub(f"{exc.kind}: {exc.message}")
            report.missing.extend(m.id for m in ms)
            return
        for name in names:
            owner = next((m.id for m in ms if same_model_name(m.model, name)), None)
            report.models.append(DiscoveredModel(name, provider, base_url, "upstream", owner))
        for m in ms:
            if not any(same_model_name(m.model, n) for n in names):
                report.missing.append(m.id)

    await asyncio.gather(*(one(k, v) for k, v in endpoints.items()))
    report.missing.sort()
    return report
