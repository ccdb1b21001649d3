"""Seed 000's Ollama client: `await client.generate(prompt=..., model=..., temperature=...)` → `.text`.

Generation goes through the router's code path so it is retried, timed and written to the
ledger like any request: a model the config declares (by id or upstream name) is pinned; any
other name becomes a transient Ollama model at OLLAMA_HOST, id "ollama/<name>". There is no
fallback to other models here — that is `FallbackManager`'s job; a failure raises
`NoHealthyModelError` naming the model and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wilton_core.api.engine import InProcessRouter
from wilton_core.api.manager import build_body
from wilton_core.api.plan import resolve_model, transient_ollama_model
from wilton_core.api.result import ChatResult
from wilton_core.errors import ProviderError

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_OLLAMA_MODEL", "GenerateResponse", "OllamaClient"]

DEFAULT_OLLAMA_MODEL = "dolphin-mistral"


@dataclass(frozen=True, slots=True)
class GenerateResponse:
    """`text`, the Ollama model name asked for, the model id that served it, seconds, tokens."""

    text: str
    model: str
    model_id: str
    latency: float
    prompt_tokens: int
    completion_tokens: int
    result: ChatResult

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class OllamaClient:
    def __init__(
        self,
        router: InProcessRouter | None = None,
        *,
        host: str | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 120.0,
        **router_options: Any,
    ) -> None:
        self.router = router if router is not None else InProcessRouter(
            environ=environ, transport=transport, **router_options)
        self._host = host
        self._transport = transport if transport is not None else self.router.transport
        self._timeout_s = timeout_s

    @property
    def host(self) -> str:
        from wilton_core.providers.ollama import ollama_base_url

        return ollama_base_url(self._host, self.router.environ)

    @property
    def default_model(self) -> str:
        return self.router.environ.get("CHAT_LOCAL_MODEL", "").strip() or DEFAULT_OLLAMA_MODEL

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> GenerateResponse:
        name = model or self.default_model
        body = build_body(messages, temperature=temperature, max_tokens=max_tokens)
        mid = resolve_model(name, self.router.config.models)
        if mid is not None:
            result = await self.router.complete({**body, "model": mid})
        else:
            cfg = transient_ollama_model(name, self.host, timeout_s=self._timeout_s)
            result = await self.router.complete_on(cfg, body)
        return GenerateResponse(result.text, name, result.model, result.latency_s, result.prompt_tokens,
                                result.completion_tokens, result)

    async def generate(
        self,
        prompt: str,
        model: str | None = None,
        temperature: float | None = None,
        *,
        system: str | None = None,
        max_tokens: int | None = None,
    ) -> GenerateResponse:
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return await self.chat(messages, model, temperature, max_tokens)

    async def list_models(self) -> list[str]:
        """Names Ollama serves (GET /api/tags); raises a ProviderError when it does not answer."""
        from wilton_core.providers.ollama import OllamaProvider

        provider = OllamaProvider(transient_ollama_model("tags", self.host, timeout_s=10.0),
                                  transport=self._transport, environ=self.router.environ)
        try:
            return await provider.list_models()
        finally:
            await provider.aclose()

    async def is_available(self) -> bool:
        """The seed's health check: does Ollama answer at all?"""
        try:
            await self.list_models()
        except ProviderError:
            return False
        return True

    async def has_model(self, name: str) -> bool:
        """True when Ollama lists `name` (":latest" is implied, as `ollama pull` does)."""
        try:
            names = await self.list_models()
        except ProviderError:
            return False
        want = name if ":" in name else name + ":latest"
        return name in names or want in names
