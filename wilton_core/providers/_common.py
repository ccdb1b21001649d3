"""Helpers shared by the HTTP providers: client sizing, OpenAI shapes, SSE/NDJSON reading, usage estimates."""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import httpx
import orjson

from wilton_core.config import ModelConfig
from wilton_core.core.messages import content_text, last_user_text, prompt_chars  # one reading of messages
from wilton_core.errors import BadRequestError, ResponseTooLargeError
from wilton_core.providers.limits import UpstreamLimits, limit_response_hook
from wilton_core.types import Usage

__all__ = [
    "ChunkFactory",
    "LineStream",
    "RequestShape",
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


def make_client(model: ModelConfig, transport: httpx.AsyncBaseTransport | None = None,
                limits: UpstreamLimits | None = None) -> httpx.AsyncClient:
    """The pooled httpx client of one model, every reply capped by its upstream limits."""
    timeout = httpx.Timeout(model.timeout_s, connect=min(CONNECT_TIMEOUT_S, model.timeout_s))
    hook = limit_response_hook(limits or UpstreamLimits.of(model), f"{model.provider} {model.id}")
    return httpx.AsyncClient(transport=transport, timeout=timeout, limits=POOL_LIMITS,
                             event_hooks={"response": [hook]})


def new_id(prefix: str = "chatcmpl-") -> str:
    return prefix + os.urandom(12).hex()


def estimate_tokens(chars: int) -> int:
    """The usual 4-characters-per-token estimate, used only when an upstream reports no usage."""
    return (chars + 3) // 4 if chars > 0 else 0


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


class LineStream(Protocol):
    """A streamed reply read line by line (httpx.Response, http1.Http1Response)."""

    def aiter_lines(self) -> AsyncIterator[str]: ...


async def iter_sse(response: LineStream, max_event_chars: int | None = None) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream reply; `event` is "" when the server names none.

    `response` is an httpx.Response or an http1.Http1Response.
    Comments (`: ping`) and blank lines yield nothing, so a caller's idle timer that restarts on
    each yielded event is not fed by keep-alives. One line is capped by the byte budget below
    (providers/limits.py); an event of many `data:` lines is capped here by `max_event_chars`.
    """
    event = ""
    data: list[str] = []
    size = 0
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data, size = "", [], 0
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
            size += len(value) + 1
            if max_event_chars is not None and size > max_event_chars:
                raise ResponseTooLargeError(f"one stream event larger than max_event_bytes={max_event_chars}")
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


class RequestShape:
    """Checks of the client's body that the translating providers (Ollama, Anthropic, Gemini) rely on.

    The gateway validates requests up front too; these keep a provider correct on its own: a
    wrong shape is the request's fault (BadRequestError naming the field), never a TypeError
    that would count against the model.
    """

    __slots__ = ("model", "provider")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model

    def fail(self, message: str, param: str) -> BadRequestError:
        return BadRequestError(f"{self.provider} {self.model}: {param}: {message}",
                               provider=self.provider, model=self.model, status=400)

    def messages(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            raise self.fail("must be a list of message objects", "messages")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                raise self.fail("must be an object", f"messages[{i}]")
            role = m.get("role", "user")
            if not isinstance(role, str):
                raise self.fail("must be a string", f"messages[{i}].role")
        return msgs

    def parts(self, content: Any, where: str) -> list[dict[str, Any]] | str | None:
        """A message content: None, a string, or a list of part objects."""
        if content is None or isinstance(content, str):
            return content
        if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
            raise self.fail("must be a string or a list of content parts (objects)", where)
        for j, p in enumerate(content):
            if p.get("type") == "text" and not isinstance(p.get("text", ""), str):
                raise self.fail("must be a string", f"{where}[{j}].text")
        return content

    def tool_calls(self, m: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
        """An assistant message's tool calls: a list of {"id"?, "function": {"name", "arguments"}}."""
        calls = m.get("tool_calls")
        if calls is None:
            return []
        if not isinstance(calls, list):
            raise self.fail("must be a list of tool calls", f"{where}.tool_calls")
        for j, tc in enumerate(calls):
            at = f"{where}.tool_calls[{j}]"
            if not isinstance(tc, dict):
                raise self.fail("must be an object", at)
            fn = tc.get("function")
            if not isinstance(fn, dict):
                raise self.fail("must be an object with name and arguments", f"{at}.function")
            if not isinstance(fn.get("name", ""), str):
                raise self.fail("must be a string", f"{at}.function.name")
            if not isinstance(fn.get("arguments"), str | dict | None):
                raise self.fail("must be a JSON string", f"{at}.function.arguments")
            if not isinstance(tc.get("id", ""), str):
                raise self.fail("must be a string", f"{at}.id")
        return calls

    def tools(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The function declarations of `tools`: [{"name", "description"?, "parameters"?}, ...]."""
        tools = body.get("tools")
        if tools is None:
            return []
        if not isinstance(tools, list):
            raise self.fail("must be a list of tools", "tools")
        out = []
        for j, t in enumerate(tools):
            if not isinstance(t, dict):
                raise self.fail("must be an object", f"tools[{j}]")
            if t.get("type", "function") != "function":
                continue
            fn = t.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise self.fail("must be an object with a name", f"tools[{j}].function")
            if not isinstance(fn.get("description", ""), str | None):
                raise self.fail("must be a string", f"tools[{j}].function.description")
            if not isinstance(fn.get("parameters", {}), dict | None):
                raise self.fail("must be a JSON schema object", f"tools[{j}].function.parameters")
            out.append(fn)
        return out


# orjson decodes nesting up to 1024 deep but encodes only ~254: a reply we pass through must be
# one the gateway can send on. Fewer brackets than this cannot nest that deep, so the re-encode
# (a cost per reply) is only paid by replies that could fail it.
_NESTING_SAFE_BRACKETS = 200


def check_reencodable(obj: Any, raw: bytes | str) -> None:
    """Raise (orjson.JSONEncodeError, a TypeError) if `obj`, decoded from `raw`, cannot be re-encoded."""
    if len(raw) <= _NESTING_SAFE_BRACKETS:  # most stream chunks: too short to hold that many brackets
        return
    opens = raw.count(b"{") + raw.count(b"[") if isinstance(raw, bytes) else raw.count("{") + raw.count("[")
    if opens > _NESTING_SAFE_BRACKETS:
        orjson.dumps(obj)
