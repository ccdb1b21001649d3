"""What the extra client APIs share: typed replies, one error value, and one way to run a chat body.

Each extra API (Anthropic Messages, OpenAI Responses, embeddings) is an `Endpoint`: it validates
a request in its own terms, translates it to an OpenAI chat body, runs it through the SAME
decide -> fallback -> ledger path as /v1/chat/completions (`run_chat`), and translates the typed
result back. app.py reads the body and renders whatever the endpoint returns; errors are built
as one `ApiError` and rendered by the endpoint in its API's own error shape.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from wilton_core.access.caller import Caller
from wilton_core.errors import NoHealthyModelError, RequestError
from wilton_core.router.results import ChatOutcome, ChunkStream
from wilton_core.router.service import RouterService
from wilton_core.router.wire import error_body, validate_chat_request

__all__ = ["ApiError", "Endpoint", "JsonReply", "OpenAIErrors", "StreamReply", "run_chat", "run_chat_stream"]


@dataclass(slots=True)
class JsonReply:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class StreamReply:
    headers: list[tuple[bytes, bytes]]
    chunks: AsyncGenerator[bytes, None]


@dataclass(slots=True)
class ApiError:
    """An error on its way to a client, independent of the API that renders it.

    `type`/`code`/`param` are the OpenAI words (the router's taxonomy); other APIs map them.
    """

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None

    @classmethod
    def of(cls, e: RequestError | NoHealthyModelError) -> ApiError:
        if isinstance(e, RequestError):
            return cls(e.status, e.message, e.type, e.code, e.param)
        type_, code = e.type_code
        return cls(e.status, e.message, type_, code, None, e.retry_after)

    def retry_headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(1, math.ceil(self.retry_after))).encode())]


class Endpoint(Protocol):
    async def handle(self, body: Any, request_id: str | None, started: float,
                     caller: Caller | None) -> JsonReply | StreamReply:
        """Serve one parsed JSON body for `caller` (the access gate's verdict; None without keys);
        raise RequestError / NoHealthyModelError for refusals."""
        ...

    def render_error(self, err: ApiError) -> JsonReply:
        """The error in this API's own wire shape."""
        ...


class OpenAIErrors:
    """render_error for endpoints speaking OpenAI's error shape."""

    def render_error(self, err: ApiError) -> JsonReply:
        return JsonReply(err.status, error_body(err.message, err.type, err.param, err.code), [])


def _checked(chat: dict[str, Any]) -> dict[str, Any]:
    # A translated body is checked like a client's: a translation gap becomes a 400, never a 500.
    return validate_chat_request(chat)


async def run_chat(service: RouterService, chat: dict[str, Any], request_id: str | None,
                   started: float, caller: Caller | None, prefix: str = "chatcmpl-") -> ChatOutcome:
    d = service.decide(_checked(chat), started, caller=caller,
                       request_id=request_id or service.new_request_id(prefix))
    return await service.complete(chat, d)


async def run_chat_stream(service: RouterService, chat: dict[str, Any], request_id: str | None,
                          started: float, caller: Caller | None, prefix: str = "chatcmpl-") -> ChunkStream:
    chat["stream"] = True
    d = service.decide(_checked(chat), started, caller=caller,
                       request_id=request_id or service.new_request_id(prefix))
    return await service.stream(chat, d)
