"""What an in-process call returns: the completion plus the routing facts the HTTP headers carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wilton_core.router.results import ChatOutcome

__all__ = ["ChatResult"]


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One answered request.

    `model` is the configured model id that answered (as in the ledger and `x-wilton-model`);
    `fallbacks` lists "model_id:error_kind" for every failed attempt before it.
    """

    text: str
    model: str
    tier: str
    is_local: bool
    intent: str
    difficulty: float
    request_id: str
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    fallbacks: tuple[str, ...] = ()
    tool_calls: tuple[dict[str, Any], ...] = ()
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of(cls, outcome: ChatOutcome, latency_s: float) -> ChatResult:
        """From the router service's typed outcome (the same facts the HTTP headers render)."""
        data = outcome.data
        facts = outcome.facts
        choices = data.get("choices")
        choice: dict[str, Any] = choices[0] if isinstance(choices, list) and choices else {}
        message: dict[str, Any] = choice.get("message") or {}
        return cls(
            text=message.get("content") or "",
            model=facts.model.id,
            tier=facts.model.tier,
            is_local=facts.model.is_local,
            intent=facts.intent,
            difficulty=facts.difficulty,
            request_id=facts.request_id,
            latency_s=latency_s,
            prompt_tokens=outcome.usage.prompt_tokens,
            completion_tokens=outcome.usage.completion_tokens,
            finish_reason=choice.get("finish_reason"),
            fallbacks=facts.fallbacks,
            tool_calls=tuple(message.get("tool_calls") or ()),
            data=data,
        )
