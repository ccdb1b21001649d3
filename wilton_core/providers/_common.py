"""Helpers shared by the HTTP providers: client sizing, OpenAI shapes, SSE/NDJSON reading, usage estimates."""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from wilton_core.config import ModelConfig
from wilton_core.errors import BadRequestError
from wilton_core.types import Usage

__all__ = [
    "ChunkFactory",
    "content_text",
    "dumps",
    "estimate_tokens",
    "iter_sse",
    "last_user_text",
    "make_client",
    "max_tokens_of",
    "new_id",
    "parse_data_url",
    "prompt_chars",
    "stop_list",
]

# Sized for ~100 concurrent requests per upstream: beyond that requests queue in the pool
# instead of opening sockets without bound.
POOL_LIMITS = httpx.Limits(max_connections=128, max_keepalive_connections=100, keepalive_expiry=30.0)
CONNECT_TIMEOUT_S = 5.0


def make_client(model: ModelConfig, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    timeout = httpx.Timeout(model.timeout_s, connect=min(CONNECT_TIMEOUT_S, model.timeout_s))
    return httpx.AsyncClient(transport=transport, timeout=timeout, limits=POOL_LIMITS)


def new_id(prefix: str = "chatcmpl-") -> str:
    return prefix + os.urandom(12).hex()


def estimate_tokens(chars: int) -> int:
    """The usual 4-characters-per-token estimate, used only when an upstream reports no usage."""
    return (chars + 3) // 4 if chars > 0 else 0


def content_text(content: Any) -> str:
    """Text of an OpenAI message content (string or list of parts); images contribute nothing."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def prompt_chars(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(len(content_text(m.get("content"))) for m in messages if isinstance(m, dict))


def last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return content_text(m.get("content"))
    return ""


def stop_list(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return [str(s) for s in stop]


def max_tokens_of(body: Mapping[str, Any], model: ModelConfig) -> int | None:
    v = body.get("max_completion_tokens") or body.get("max_tokens") or model.max_output_tokens
    return int(v) if v else None


def parse_data_url(url: str, *, provider: str, model: str) -> tuple[str, str]:
    """(mime type, base64 data) of a `data:image/png;base64,...` URL; BadRequestError otherwise."""
    head, sep, data = url.partition(",")
    if not url.startswith("data:") or not sep or ";base64" not in head:
        raise BadRequestError(
            f"{provider} {model}: images must be base64 data: URLs (got {url[:40]!r}...)",
            provider=provider, model=model, status=400,
        )
    mime = head[5:].split(";", 1)[0] or "image/png"
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError(f"{provider} {model}: image data URL is not valid base64",
                              provider=provider, model=model, status=400) from None
    return mime, data


async def iter_sse(response: Any) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream reply; `event` is "" when the server names none.

    `response` is anything with `aiter_lines()`: an httpx.Response or an http1.Http1Response.
    """
    event = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield event, "\n".join(data)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class ChunkFactory:
    """Builds the OpenAI `chat.completion.chunk` dicts of one stream, with one id and `created`."""

    __slots__ = ("created", "id", "model")

    def __init__(self, model: str, id_: str | None = None, created: int | None = None) -> None:
        self.id = id_ or new_id()
        self.created = int(time.time()) if created is None else created
        self.model = model

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            # logprobs: null as OpenAI sends it (tests/api/fixtures): strict clients see the same shape
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage.as_openai(),
        }

    def completion(
        self, message: dict[str, Any], finish_reason: str, usage: Usage
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage.as_openai(),
        }
