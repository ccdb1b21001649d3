"""QwenCoder: code generation and explanation on the code intent's local model."""

from __future__ import annotations

from typing import ClassVar

from wilton_core.core.intent import Intent
from wilton_core.models.base import SpecialistModel

__all__ = ["CODER_SYSTEM_PROMPT", "QwenCoder"]

CODER_SYSTEM_PROMPT = (
    "You are a careful senior programmer. Answer with complete, working code in one fenced "
    "block, then at most three short lines on how it works. Prefer the standard library."
)


class QwenCoder(SpecialistModel):
    intent: ClassVar[Intent] = Intent.CODE
    env_key: ClassVar[str] = "CODE_LOCAL_MODEL"
    default_model: ClassVar[str] = "qwen2.5-coder:7b"
    default_system_prompt: ClassVar[str] = CODER_SYSTEM_PROMPT
    default_temperature: ClassVar[float | None] = 0.2

    async def generate(self, task: str, language: str | None = None) -> str:
        """Code for `task` (in `language` when given)."""
        prompt = f"{task}\n\nLanguage: {language}" if language else task
        return (await self.ask(prompt)).text

    async def explain(self, code: str) -> str:
        return (await self.ask(f"Explain what this code does and any bug you see:\n\n```\n{code}\n```")).text
