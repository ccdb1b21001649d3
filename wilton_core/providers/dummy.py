"""A scriptable provider with no network, to rehearse routing and fallback (TensorZero's `dummy`).

The upstream model name (`model = "..."` in the config) scripts the behaviour:

    echo              answer with the last user message
    fixed             answer with FIXED_REPLY
    error             always UnavailableError (as an upstream 500)
    ratelimit[:S]     always RateLimitedError with retry_after S seconds (default 1)
    slow:<ms>         echo after sleeping <ms> milliseconds (streams: spread over the chunks)
    flaky:<p>         UnavailableError with probability p, else echo; draws from a seeded RNG
                      (seed = the model id unless `seed=` is given), so runs are reproducible
    badrequest        always BadRequestError (as an upstream 400)
    auth              always AuthError (as an upstream 401)
    context           always ContextTooLongError
    stall             streams send the first chunk then hang for timeout_s and raise
                      UnavailableError (what a read timeout looks like); complete() the same
    die               streams send the first chunk then raise UnavailableError; complete() fails

Successful answers call the first tool (arguments {"input": <last user message>}) when the
request carries tools and tool_choice is not "none", like the fake upstream does.
Usage is the chars/4 estimate of prompt and answer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import orjson

from wilton_core.config import ModelConfig
from wilton_core.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    ContextTooLongError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from wilton_core.providers._common import ChunkFactory, estimate_tokens, last_user_text, new_id, prompt_chars
from wilton_core.providers.errors_map import ErrorScope, upstream_call
from wilton_core.types import Completion, Usage

__all__ = ["FIXED_REPLY", "SCRIPTS", "DummyProvider", "parse_script"]

FIXED_REPLY = "This is a fixed reply from the dummy provider."
SCRIPTS = ("echo", "fixed", "error", "ratelimit", "slow", "flaky", "badrequest", "auth", "context", "stall", "die")


def parse_script(name: str) -> tuple[str, float | None]:
    """("slow", 250.0) for "slow:250"; ConfigError for an unknown script or a bad argument."""
    head, _, arg = name.partition(":")
    if head not in SCRIPTS:
        raise ConfigError(f"dummy model '{name}': unknown script; use one of {', '.join(SCRIPTS)}")
    if not arg:
        if head in ("slow", "flaky"):
            raise ConfigError(f"dummy model '{name}': '{head}' needs an argument, e.g. '{head}:0.5'")
        return head, None
    try:
        value = float(arg)
    except ValueError:
        raise ConfigError(f"dummy model '{name}': argument '{arg}' is not a number") from None
    if head == "flaky" and not 0.0 <= value <= 1.0:
        raise ConfigError(f"dummy model '{name}': flaky probability must be in [0, 1]")
    if value < 0:
        raise ConfigError(f"dummy model '{name}': argument must not be negative")
    return head, value


class DummyProvider:
    name = "dummy"

    def __init__(
        self,
        model: ModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,  # accepted for factory symmetry; unused
        environ: Mapping[str, str] | None = None,
        seed: int | str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        limits: object = None,  # accepted for factory symmetry: no upstream, nothing to limit
        upstream_http: str = "auto",  # accepted for factory symmetry: no HTTP client
    ) -> None:
        self.model = model
        self.script, self.arg = parse_script(model.model)
        self._rng = random.Random(model.id if seed is None else seed)
        self._sleep = sleep
        self.calls = 0

    def _err(self, cls: type[ProviderError], what: str, status: int, **kw: Any) -> ProviderError:
        return cls(f"dummy {self.model.id}: {what}", provider=self.name, model=self.model.id, status=status, **kw)

    async def _gate(self) -> None:
        """Raise the scripted failure, or wait the scripted delay, before any output."""
        self.calls += 1
        s = self.script
        if s == "error":
            raise self._err(UnavailableError, "scripted upstream error", 500)
        if s == "ratelimit":
            raise self._err(RateLimitedError, "scripted rate limit", 429,
                            retry_after=1.0 if self.arg is None else self.arg)
        if s == "badrequest":
            raise self._err(BadRequestError, "scripted bad request", 400)
        if s == "auth":
            raise self._err(AuthError, "scripted auth failure", 401)
        if s == "context":
            raise self._err(ContextTooLongError, "scripted context length exceeded", 400)
        if s == "flaky" and self._rng.random() < (self.arg or 0.0):
            raise self._err(UnavailableError, "scripted flaky failure", 503)

    def error_scope(self) -> ErrorScope:
        return ErrorScope(self.name, self.model.id)

    def _answer(self, body: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        with self.error_scope().request():  # the body is the client's: a wrong shape is its fault
            text = FIXED_REPLY if self.script == "fixed" else last_user_text(body.get("messages"))
            tools = body.get("tools") or []
            if tools and body.get("tool_choice") != "none":
                fn = str((tools[0].get("function") or {}).get("name", "tool"))
                args = orjson.dumps({"input": last_user_text(body.get("messages"))}).decode()
                return "", [{"id": new_id("call_"), "type": "function", "function": {"name": fn, "arguments": args}}]
            return text, []

    def _usage(self, body: Mapping[str, Any], text: str, calls: list[dict[str, Any]]) -> Usage:
        out = len(text) + sum(len(c["function"]["arguments"]) for c in calls)
        with self.error_scope().request():
            return Usage(estimate_tokens(prompt_chars(body.get("messages"))), estimate_tokens(out))

    @upstream_call
    async def complete(self, body: Mapping[str, Any]) -> Completion:
        await self._gate()
        if self.script == "stall":
            await self._sleep(self.model.timeout_s)
            raise self._err(UnavailableError, "scripted stall: timed out", 504)
        if self.script == "die":
            raise self._err(UnavailableError, "scripted connection drop", 502)
        if self.script == "slow":
            await self._sleep((self.arg or 0.0) / 1000)
        text, calls = self._answer(body)
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        usage = self._usage(body, text, calls)
        data = ChunkFactory(self.model.model).completion(message, "tool_calls" if calls else "stop", usage)
        return Completion(data=data, usage=usage)

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._stream(body)

    @upstream_call
    async def _stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        await self._gate()
        cf = ChunkFactory(self.model.model)
        text, calls = self._answer(body)
        yield cf.chunk({"role": "assistant", "content": ""})
        if self.script == "stall":
            await self._sleep(self.model.timeout_s)
            raise self._err(UnavailableError, "scripted stall: timed out mid-stream", 504)
        if self.script == "die":
            raise self._err(UnavailableError, "scripted connection drop mid-stream", 502)
        pieces = [w + " " for w in text.split(" ")] if text else []
        if pieces:
            pieces[-1] = pieces[-1][:-1]
        per_piece = ((self.arg or 0.0) / 1000 / max(1, len(pieces))) if self.script == "slow" else 0.0
        for p in pieces:
            if per_piece:
                await self._sleep(per_piece)
            yield cf.chunk({"content": p})
        if calls:
            yield cf.chunk({"tool_calls": [{"index": 0, **calls[0]}]})
        yield cf.chunk({}, "tool_calls" if calls else "stop")
        yield cf.usage_chunk(self._usage(body, text, calls))

    async def list_models(self) -> list[str]:
        return list(SCRIPTS)

    async def aclose(self) -> None:
        return None
