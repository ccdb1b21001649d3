"""Plain data that crosses module boundaries: provider results and ledger rows.

Providers speak the OpenAI chat-completions shape at their boundary (a `dict` per completion
or per stream chunk) because that is the gateway's wire format: the common case (an
OpenAI-compatible upstream) then passes through with no translation at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["MAX_TOKEN_COUNT", "Completion", "Ledger", "LedgerRecord", "Usage", "token_count"]

# No real request comes near this; an upstream that reports more is wrong, and the ledger and cost
# arithmetic must stay finite (an upstream once reported 1e308 and the row was lost).
MAX_TOKEN_COUNT = 10_000_000


def token_count(value: object) -> int:
    """A token count reported by an upstream, as a sane int: 0 for anything that is not a finite
    non-negative number (None, "n/a", NaN, -5, True), clamped to MAX_TOKEN_COUNT."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return 0
        if value >= MAX_TOKEN_COUNT:
            return MAX_TOKEN_COUNT
        value = int(value)
    return min(max(value, 0), MAX_TOKEN_COUNT)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of(cls, prompt: object, completion: object) -> Usage:
        """Usage from two upstream-reported counts of any type, each through `token_count`."""
        return cls(token_count(prompt), token_count(completion))

    @classmethod
    def from_openai(cls, usage: object) -> Usage | None:
        """Usage of an OpenAI `usage` object; None when there is none (not a dict)."""
        if not isinstance(usage, dict):
            return None
        return cls(token_count(usage.get("prompt_tokens")), token_count(usage.get("completion_tokens")))

    def as_openai(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class Completion:
    """A finished non-streaming completion: `data` is an OpenAI `chat.completion` object."""

    data: dict[str, Any]
    usage: Usage = field(default_factory=Usage)


@dataclass(slots=True)
class LedgerRecord:
    """One routed request, as written to the shared store.

    status: "ok" | "error" | "stream_error" (the stream broke after its first byte).
    error_class: a ProviderError.kind, "no_healthy_model", or None.
    fallbacks: how many models were tried and failed before the one that answered.
    tried: comma-separated model ids tried before `model_id`, in order.
    http_status, key_id, local_only: see the fields.
    attempt_errors: why each of those attempts failed, "model_id:kind,model_id:kind" in the
        same order as `tried` (kind is a ProviderError.kind); "" when nothing failed.
    """

    ts: float
    request_id: str
    model_id: str
    tier: str
    is_local: bool
    provider: str
    intent: str | None = None
    difficulty: float | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    status: str = "ok"
    error_class: str | None = None
    fallbacks: int = 0
    tried: str = ""
    stream: bool = False
    replica: str = ""
    attempt_errors: str = ""
    # the HTTP status the client saw (200 for a stream that started, even if it broke later)
    http_status: int = 200
    # the client key's id ("" without keys or for the master key)
    key_id: str = ""
    # held to local models by its key or the x-wilton-privacy header: it never left the machine
    local_only: bool = False
    # voice bridge (migration 0006): seconds of audio heard (intent "stt") or spoken ("tts"), and
    # characters of text transcribed out ("stt") or read in ("tts"); 0 on chat rows
    audio_s: float = 0.0
    chars: int = 0
    # Prompt text, present only when the operator opted in (WILTON_CAPTURE_PROMPTS=1): stored in
    # request_prompts for `wilton-insight --include-prompts`, never in the ledger itself.
    prompt: str | None = None


class Ledger(Protocol):
    """Where ledger records go (the batching writer, a tap in front of it, a test's list).

    One method: a submit must not block (the request path calls it); the writer behind it
    owns batching, retries and its own lifecycle."""

    def submit(self, record: LedgerRecord) -> None: ...
