"""What the router service hands its callers: typed values, never bytes or headers.

A request is decided into a `Route` (the chain and the facts that chose it), executed into an
outcome (`ChatOutcome`, `ChunkStream`, `EmbedResult`) carrying the answer, the sanitised usage
and the `RoutingFacts` of who answered. Only the HTTP layer (`router/render.py`, used by app.py
and the endpoints) turns those into bytes and `x-wilton-*` headers; the in-process API
(`api/engine.py`) reads the same values directly.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wilton_core.config import ModelConfig
from wilton_core.router.fallback import Attempt
from wilton_core.types import Usage

if TYPE_CHECKING:
    from wilton_core.router.shadow import ShadowTicket
    from wilton_core.router.tracing import RequestSpan

__all__ = ["ChatOutcome", "ChunkStream", "EmbedResult", "Route", "RoutingFacts", "StreamFailure"]


@dataclass(slots=True)
class Route:
    """One request's routing decision: the chain to walk and the facts that chose it.

    (Not `core.selector.Decision`, which is the pure selector's output this is built from.)
    """

    request_id: str
    chain: list[str]
    intent: str
    difficulty: float
    started: float  # perf_counter at arrival
    decide_s: float = 0.0
    prompt: str | None = None  # kept only when prompt capture is on
    # access (issue 14): who asked
    key_id: str = ""
    local_only: bool = False
    span: RequestSpan | None = None  # the request's tracing span, only when tracing is on
    shadow: ShadowTicket | None = None  # issue 16: drawn for shadow judging (router/shadow.py)


@dataclass(frozen=True, slots=True)
class RoutingFacts:
    """Who answered a request and how it got there (what `x-wilton-*` headers say)."""

    request_id: str
    model: ModelConfig
    intent: str
    difficulty: float
    attempts: tuple[Attempt, ...]  # the failed attempts before the model that answered
    overhead_s: float  # router time: total minus upstream (to the first chunk for streams)

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """"model_id:error_kind" for every failed attempt, in order."""
        return tuple(f"{a.model_id}:{a.kind}" for a in self.attempts)


@dataclass(slots=True)
class ChatOutcome:
    """A finished non-streaming chat request.

    `data` is the OpenAI chat.completion: id = the request id, model = the model id, usage = the
    sanitised count (the one in the ledger)."""

    data: dict[str, Any]
    usage: Usage
    facts: RoutingFacts


@dataclass(slots=True)
class StreamFailure:
    """The last item of a chunk stream that broke after its first chunk (the ledger row is written)."""

    code: str
    message: str
    type: str  # "upstream_error" (the model's stream failed) or "server_error" (ours)


@dataclass(slots=True)
class ChunkStream:
    """A committed stream: OpenAI chunk dicts (id = request id, model = model id), the last one
    with data carrying the sanitised `usage` and empty choices, or a `StreamFailure` last.

    A renderer that cannot send a chunk (it does not encode) throws a ProviderError into `chunks`
    (`athrow`): the stream then ends the way an upstream failure ends it, recorded as one."""

    facts: RoutingFacts
    chunks: AsyncGenerator[dict[str, Any] | StreamFailure, None]  # aclose() it when done early


@dataclass(slots=True)
class EmbedResult:
    vectors: list[list[float]]
    usage: Usage
    facts: RoutingFacts
