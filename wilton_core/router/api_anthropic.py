"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the router.

Validate in Anthropic's terms, translate to a chat body (anthropic_wire), run the same routing
path as chat completions (endpoints.run_chat*), translate back. Errors in Anthropic's shape.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from wilton_core.access.caller import Caller
from wilton_core.core.messages import estimate_tokens
from wilton_core.router.anthropic_wire import (
    MessagesStream,
    error_json,
    estimate_input_tokens,
    from_chat,
    to_chat,
    validate_messages_request,
)
from wilton_core.router.endpoints import ApiError, JsonReply, StreamReply, run_chat, run_chat_stream
from wilton_core.router.render import routing_headers
from wilton_core.router.results import ChunkStream, RoutingFacts, StreamFailure
from wilton_core.router.service import RouterService

__all__ = ["AnthropicCountTokens", "AnthropicMessages"]


def _headers(facts: RoutingFacts, caller: Caller | None) -> list[tuple[bytes, bytes]]:
    # the Anthropic SDK reads `request-id` (its `_request_id`); ours is the ledger's id
    return [*routing_headers(facts, caller), (b"request-id", facts.request_id.encode())]


class _AnthropicErrors:
    def render_error(self, err: ApiError) -> JsonReply:
        status, body = error_json(err)
        return JsonReply(status, body, [])


class AnthropicMessages(_AnthropicErrors):
    def __init__(self, service: RouterService) -> None:
        self.service = service

    async def handle(self, body: Any, request_id: str | None, started: float,
                     caller: Caller | None) -> JsonReply | StreamReply:
        req = validate_messages_request(body)
        chat = to_chat(req)
        if req.get("stream"):
            out = await run_chat_stream(self.service, chat, request_id, started, caller, prefix="msg_")
            return StreamReply(_headers(out.facts, caller), self._events(out, chat))
        res = await run_chat(self.service, chat, request_id, started, caller, prefix="msg_")
        return JsonReply(200, orjson.dumps(from_chat(res.data)), _headers(res.facts, caller))

    async def _events(self, out: ChunkStream, chat: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        tr = MessagesStream(out.facts.request_id, out.facts.model.id, estimate_tokens(chat["messages"]))
        try:
            async for item in out.chunks:
                if isinstance(item, StreamFailure):
                    for b in tr.fail(item.message):
                        yield b
                    return
                for b in tr.feed(item):
                    yield b
            for b in tr.finish():
                yield b
        finally:
            await out.chunks.aclose()  # a client gone mid-stream: the upstream is closed, the row written


class AnthropicCountTokens(_AnthropicErrors):
    """An estimate (no model is called, so no ledger row): the same count routing uses, plus tool
    schemas and a flat 1000 tokens per image."""

    def __init__(self, service: RouterService) -> None:
        self.service = service

    async def handle(self, body: Any, request_id: str | None, started: float,
                     caller: Caller | None) -> JsonReply:
        req = validate_messages_request(body, count_only=True)
        model = req.get("model") or "auto"
        if model not in ("auto", "local", "api") and self.service.get_model(model) is None:
            return self.render_error(ApiError(404, f"model: '{model[:200]}' is not a model of this router.",
                                              code="model_not_found", param="model"))
        return JsonReply(200, orjson.dumps({"input_tokens": estimate_input_tokens(req)}))
