"""What the specialised models share: a default model from the env, a system prompt, an intent."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from wilton_core.core.intent import Intent

if TYPE_CHECKING:
    from wilton_core.api.manager import FallbackManager
    from wilton_core.api.result import ChatResult

__all__ = ["SpecialistModel"]


class SpecialistModel:
    """A model name + system prompt + intent, asked through a `FallbackManager`.

    `manager=None` uses the process-wide `get_fallback_manager()` at call time (not at
    construction, so building one opens nothing). Methods return the answer text and raise a
    `WiltonError` (usually `NoHealthyModelError`) when no model could answer; `ask()` returns
    the whole `ChatResult` (model that answered, tokens, latency, fallbacks).
    """

    intent: ClassVar[Intent] = Intent.CHAT
    env_key: ClassVar[str] = "CHAT_LOCAL_MODEL"
    default_model: ClassVar[str] = ""
    default_system_prompt: ClassVar[str] = ""
    default_temperature: ClassVar[float | None] = None

    def __init__(
        self,
        model: str | None = None,
        *,
        manager: FallbackManager | None = None,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.model = model or env.get(self.env_key, "").strip() or self.default_model
        self.system_prompt = self.default_system_prompt if system_prompt is None else system_prompt
        self.temperature = self.default_temperature if temperature is None else temperature
        self.max_tokens = max_tokens
        self._manager = manager

    @property
    def manager(self) -> FallbackManager:
        if self._manager is not None:
            return self._manager
        from wilton_core.api.defaults import get_fallback_manager

        return get_fallback_manager()

    def messages(self, user_content: Any, history: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        out += [dict(m) for m in history]
        out.append({"role": "user", "content": user_content})
        return out

    async def ask(self, user_content: Any, *, history: Sequence[Mapping[str, Any]] = (),
                  temperature: float | None = None, max_tokens: int | None = None) -> ChatResult:
        return await self.manager.complete(
            self.messages(user_content, history), intent=self.intent, model=self.model,
            temperature=self.temperature if temperature is None else temperature,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
        )
