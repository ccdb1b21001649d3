"""Seed 000's FallbackManager: ask with an intent, get `(text, error, success)`, never an exception
for an upstream failure.

It is a thin layer over `InProcessRouter`: the intent picks the per-intent default local model
(pinned first), the router's own phi-balanced chain follows it, and every request lands in the
ledger. The router still classifies the request itself; `intent` only chooses the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wilton_core.api.engine import InProcessRouter
from wilton_core.api.plan import AUTO_NAMES, coerce_intent, preferred_models
from wilton_core.api.result import ChatResult
from wilton_core.core.intent import Intent, detect_intent, intent_defaults_from_env
from wilton_core.errors import (
    ConfigError,
    NoHealthyModelError,
    ProviderError,
    RequestError,
    StoreError,
    WiltonError,
)

if TYPE_CHECKING:
    import httpx

    from wilton_core.config import StackConfig
    from wilton_core.settings import Settings
    from wilton_core.store.base import Store

__all__ = ["FallbackManager", "build_body", "describe_error"]


def build_body(
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
) -> dict[str, Any]:
    """An OpenAI chat-completions body; unset knobs are left out so each model keeps its defaults."""
    body: dict[str, Any] = {"model": model if model in AUTO_NAMES else "auto",
                            "messages": [dict(m) for m in messages]}
    if temperature is not None:
        body["temperature"] = float(temperature)
    if max_tokens is not None:
        body["max_tokens"] = int(max_tokens)
    if tools:
        body["tools"] = [dict(t) for t in tools]
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    return body


def describe_error(err: BaseException) -> str:
    """One readable line for the `error` slot; provider messages are already free of secrets."""
    if isinstance(err, NoHealthyModelError | RequestError):
        return err.message
    if isinstance(err, ProviderError):
        return f"{err.kind}: {err.message}"
    if isinstance(err, StoreError):
        return f"store unavailable: {err}"
    if isinstance(err, ConfigError):
        return f"configuration error: {err}"
    return f"{type(err).__name__}: {err}"


class FallbackManager:
    """`generate_with_fallback(prompt, intent)` over the in-process router.

    Build it around an existing `InProcessRouter`, or let it make one from `config=`, `store=`,
    `settings=`, `environ=`, `transport=` (see `InProcessRouter`). `get_fallback_manager()`
    returns the process-wide one.
    """

    def __init__(
        self,
        router: InProcessRouter | None = None,
        *,
        config: StackConfig | None = None,
        store: Store | None = None,
        settings: Settings | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **router_options: Any,
    ) -> None:
        self.router = router if router is not None else InProcessRouter(
            config, store=store, settings=settings, environ=environ, transport=transport, **router_options)

    def preferred_models(self, intent: Intent | str, model: str | None = None) -> list[str]:
        """Model ids tried before the router's chain for this intent (and requested model)."""
        cfg = self.router.config
        return preferred_models(coerce_intent(intent), cfg.models, cfg.routing.intent_defaults,
                                intent_defaults_from_env(self.router.environ), requested=model)

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        intent: Intent | str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
    ) -> ChatResult:
        """Answer `messages`; raises a `WiltonError` when nothing could (see generate_with_fallback).

        `model`: a configured id or upstream model name tried first ("auto", "local", "api" let
        the router choose, optionally within one class). A name no model has is ignored.
        """
        intent_ = coerce_intent(intent) if intent is not None else detect_intent(list(messages))
        body = build_body(messages, model=model, temperature=temperature, max_tokens=max_tokens,
                          tools=tools, tool_choice=tool_choice)
        return await self.router.complete(body, prefer=self.preferred_models(intent_, model))

    async def generate(
        self,
        prompt: str,
        intent: Intent | str | None = None,
        model: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResult:
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return await self.complete(messages, intent=intent if intent is not None else detect_intent(prompt),
                                   model=model, temperature=temperature, max_tokens=max_tokens)

    async def generate_with_fallback(
        self,
        prompt: str,
        intent: Intent | str | None = None,
        model: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> tuple[str | None, str | None, bool]:
        """`(text, None, True)` on success, `(None, error, False)` when no model could answer.

        Never raises for upstream, store or configuration failures: `error` says what happened
        (e.g. "No eligible model could serve the request. Tried: ollama-chat (unavailable x2)").
        """
        try:
            result = await self.generate(prompt, intent, model, system, temperature, max_tokens)
        except WiltonError as e:
            return None, describe_error(e), False
        return result.text, None, True

    async def aclose(self) -> None:
        await self.router.aclose()
