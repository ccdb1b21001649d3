"""DolphinChat: conversation with Luna's voice (seed 000), on the chat intent's local model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from wilton_core.core.intent import Intent
from wilton_core.models.base import SpecialistModel

__all__ = ["LUNA_SYSTEM_PROMPT", "DolphinChat"]

LUNA_SYSTEM_PROMPT = (
    "Você é Luna, uma assistente calorosa, curiosa e direta que roda localmente. "
    "Responda no idioma de quem fala com você, em poucas frases claras; "
    "diga quando não souber algo em vez de inventar."
)


class DolphinChat(SpecialistModel):
    intent: ClassVar[Intent] = Intent.CHAT
    env_key: ClassVar[str] = "CHAT_LOCAL_MODEL"
    default_model: ClassVar[str] = "dolphin-mistral"
    default_system_prompt: ClassVar[str] = LUNA_SYSTEM_PROMPT
    default_temperature: ClassVar[float | None] = 0.7

    async def chat(self, message: str, history: Sequence[Mapping[str, Any]] = ()) -> str:
        """Luna's answer to `message`; `history` is earlier OpenAI-style turns, oldest first."""
        return (await self.ask(message, history=history)).text
