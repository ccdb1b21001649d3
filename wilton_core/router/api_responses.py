"""POST /v1/responses: OpenAI's Responses API (stateless subset) over the router.

Validate (responses_wire), translate to a chat body, run the usual routing path
(endpoints.run_chat*), translate the result or chunks back. Errors in OpenAI's error shape.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from wilton_core.access.caller import Caller
from wilton_core.router.endpoints import JsonReply, OpenAIErrors, StreamReply, run_chat, run_chat_stream
from wilton_core.router.render import routing_headers
from wilton_core.router.responses_wire import ResponsesStream, from_chat, to_chat, validate_responses_request
from wilton_core.router.results import ChunkStream, StreamFailure
from wilton_core.router.service import RouterService

__all__ = ["Responses"]


class Responses(OpenAIErrors):
    def __init__(self, service: RouterService) -> None:
        self.service = service

    async def handle(self, body: Any, request_id: str | None, started: float,
                     caller: Caller | None) -> JsonReply | StreamReply:
        req = validate_responses_request(body)
        chat = to_chat(req)
        if req.get("stream"):
            out = await run_chat_stream(self.service, chat, request_id, started, caller, prefix="resp_")
            return StreamReply(routing_headers(out.facts, caller), self._events(req, out))
        res = await run_chat(self.service, chat, request_id, started, caller, prefix="resp_")
        return JsonReply(200, orjson.dumps(from_chat(req, res.data)), routing_headers(res.facts, caller))

    async def _events(self, req: dict[str, Any], out: ChunkStream) -> AsyncGenerator[bytes, None]:
        tr = ResponsesStream(req, out.facts.request_id, out.facts.model.id, int(time.time()))
        try:
            async for item in out.chunks:
                if isinstance(item, StreamFailure):
                    for b in tr.fail(item.code, item.message):
                        yield b
                    return
                for b in tr.feed(item):
                    yield b
            for b in tr.finish():
                yield b
        finally:
            await out.chunks.aclose()  # a client gone mid-stream: the upstream is closed, the row written
