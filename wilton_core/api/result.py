"""What an in-process call returns: the completion plus the routing facts the HTTP headers carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

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
    def from_wire(cls, body: bytes, headers: list[tuple[bytes, bytes]], latency_s: float) -> ChatResult:
        """Build from the router's Outcome (JSON chat.completion bytes + x-wilton-* headers)."""
        data: dict[str, Any] = orjson.loads(body)
        h = {k.decode(): v.decode() for k, v in headers}
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = data.get("usage") or {}
        fb = h.get("x-wilton-fallbacks", "0")
        return cls(
            text=message.get("content") or "",
            model=h.get("x-wilton-model", str(data.get("model", ""))),
            tier=h.get("x-wilton-tier", ""),
            is_local=h.get("x-wilton-local") == "true",
            intent=h.get("x-wilton-intent", ""),
            difficulty=float(h.get("x-wilton-difficulty") or 0.0),
            request_id=h.get("x-request-id", str(data.get("id", ""))),
            latency_s=latency_s,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
            fallbacks=() if fb in ("", "0") else tuple(fb.split(",")),
            tool_calls=tuple(message.get("tool_calls") or ()),
            data=data,
        )
