"""Map every upstream failure onto the stack's error vocabulary (wilton_core.errors).

Two pure entry points: `error_from_http` for an HTTP reply (status, headers, body) and
`error_from_exception` for a transport failure. Every provider uses them, so the fallback chain
sees the same class for the same failure whatever the upstream. `ErrorScope` and the
`upstream_call` decorator put them at every provider entry point: whatever escapes a provider
is a ProviderError, and a failure to translate the client's body is the request's fault. Messages are built from the
upstream's own error text, cut short, and scrubbed of any key we might have sent: an upstream
that echoes the Authorization header back must not leak it into logs.
"""

from __future__ import annotations

import email.utils
import functools
import inspect
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from wilton_core.errors import (
    AuthError,
    BadRequestError,
    ContextTooLongError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
    UpstreamTimeoutError,
)

__all__ = [
    "ErrorScope",
    "error_from_exception",
    "error_from_http",
    "parse_retry_after",
    "scrub",
    "upstream_call",
    "upstream_message",
]

_MAX_MESSAGE = 300
# Wording used by OpenAI, Groq, vLLM, llama.cpp, Anthropic and Gemini when the prompt is too big.
_CONTEXT_RE = re.compile(
    r"context_length_exceeded|context length|context window|maximum context|too long|too many tokens"
    r"|prompt is too long|exceeds the (?:maximum|limit)|input token count|n_ctx",
    re.IGNORECASE,
)
_DURATION_RE = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove secrets from text (an upstream may echo the key back in its error)."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def _parse_duration(value: str) -> float | None:
    """Seconds from '1.5', '6m0s', '20ms', '1h2m3.5s' (OpenAI/Groq x-ratelimit-reset-* format)."""
    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    m = _DURATION_RE.match(v)
    if not v or not m or not any(m.groups()):
        return None
    h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP-date), retry-after-ms, or x-ratelimit-reset-*.

    `now` (epoch seconds) is only used for the HTTP-date form; it defaults to the wall clock.
    """
    h = {k.lower(): v for k, v in headers.items()}
    ms = h.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = h.get("retry-after")
    if ra:
        try:
            return max(0.0, float(ra))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(ra)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                ref = time.time() if now is None else now
                return max(0.0, when.timestamp() - ref)
    # OpenAI/Groq: the longest reset among the exhausted limits is when the call can succeed.
    resets = [
        d for k in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-ratelimit-reset")
        if (v := h.get(k)) and (d := _parse_duration(v)) is not None
    ]
    return max(resets) if resets else None


def upstream_message(body: bytes | str | Any) -> str:
    """The human text of an upstream error body in any of the four wire formats."""
    data: Any = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except ValueError:
            return text.strip()[:_MAX_MESSAGE]
    if isinstance(data, list) and data:  # Gemini sometimes wraps the error in a list
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str):
            return err[:_MAX_MESSAGE]
        if isinstance(err, dict):
            parts = [str(err[k]) for k in ("message", "code", "type", "status") if err.get(k)]
            if parts:
                return " | ".join(parts)[:_MAX_MESSAGE]
    return str(data)[:_MAX_MESSAGE]


def error_from_http(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | Any,
    *,
    provider: str = "",
    model: str = "",
    secrets: Iterable[str | None] = (),
    now: float | None = None,
) -> ProviderError:
    """The ProviderError for a non-2xx upstream reply (body: raw bytes/str or decoded JSON)."""
    detail = scrub(upstream_message(body), secrets)
    message = f"{provider or 'upstream'} {model}: HTTP {status}: {detail}".strip()
    kw: dict[str, Any] = {"provider": provider, "model": model, "status": status}
    if status == 429:
        return RateLimitedError(message, retry_after=parse_retry_after(headers, now), **kw)
    if status in (401, 403):
        return AuthError(message, **kw)
    if status in (400, 413, 422) and (status == 413 or _CONTEXT_RE.search(detail)):
        return ContextTooLongError(message, **kw)
    if status in (408, 409) or status >= 500:
        return UnavailableError(message, retry_after=parse_retry_after(headers, now), **kw)
    if 400 <= status < 500:
        return BadRequestError(message, **kw)
    # 1xx/3xx reaching us means the upstream is not the API we think it is.
    return UnavailableError(message, **kw)


def error_from_exception(
    exc: BaseException, *, provider: str = "", model: str = "", secrets: Iterable[str | None] = ()
) -> ProviderError:
    """The ProviderError for a transport failure or an unparseable upstream reply."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, httpx.ConnectTimeout):
        what = "connection failed"
    elif isinstance(exc, httpx.TimeoutException | TimeoutError):
        detail = scrub(str(exc) or type(exc).__name__, secrets)[:_MAX_MESSAGE]
        return UpstreamTimeoutError(f"{provider or 'upstream'} {model}: timed out: {detail}",
                                    provider=provider, model=model)
    elif isinstance(exc, httpx.ConnectError):
        what = "connection failed"
    elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        what = "connection broken"
    elif isinstance(exc, ValueError | KeyError | TypeError | IndexError):
        what = "malformed reply"
    elif isinstance(exc, httpx.HTTPError | OSError):
        what = "transport error"
    else:
        what = "unexpected failure"
    detail = scrub(str(exc) or type(exc).__name__, secrets)[:_MAX_MESSAGE]
    return UnavailableError(
        f"{provider or 'upstream'} {model}: {what}: {detail}", provider=provider, model=model
    )


@dataclass(frozen=True, slots=True)
class ErrorScope:
    """Who is calling (for messages) and which secrets to scrub; two scopes for the two fault lines.

    `request()` wraps the translation of the client's body: anything it raises is the request's
    fault (BadRequestError, never counted against the model). `reply()` wraps the exchange with
    the upstream: anything it raises is the upstream's (error_from_exception: "malformed reply",
    "connection broken", ...). ProviderErrors raised on purpose pass through both unchanged.
    """

    provider: str
    model: str
    secrets: tuple[str | None, ...] = ()
    # a provider's own mapping tried first (Gemini: the SDK's APIError carries the HTTP status)
    special: Callable[[Exception], ProviderError | None] | None = None

    def request(self) -> _RequestFault:
        return _RequestFault(self)

    def reply(self) -> _ReplyFault:
        return _ReplyFault(self)

    def request_error(self, e: Exception) -> ProviderError:
        """What a failure translating the client's body means: the request's fault."""
        if isinstance(e, ProviderError):
            return e
        detail = scrub(str(e) or type(e).__name__, self.secrets)[:_MAX_MESSAGE]
        return BadRequestError(f"{self.provider} {self.model}: the request cannot be sent to this provider: "
                               f"{detail}", provider=self.provider, model=self.model, status=400)

    def reply_error(self, e: Exception) -> ProviderError:
        """What a failure in the exchange with the upstream means: the upstream's fault."""
        if isinstance(e, ProviderError):
            if not e.provider:  # raised below the provider (a size cap in the HTTP client): say whose
                e.provider, e.model = self.provider, self.model
            return e
        mapped = self.special(e) if self.special is not None else None
        return mapped or error_from_exception(e, provider=self.provider, model=self.model, secrets=self.secrets)


# Context managers as small classes, not @contextmanager generators: they wrap every upstream call
# and a generator-based one costs several times more on the request path.
class _RequestFault:
    __slots__ = ("_scope",)

    def __init__(self, scope: ErrorScope) -> None:
        self._scope = scope

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        if isinstance(e, Exception) and not isinstance(e, ProviderError):
            raise self._scope.request_error(e) from e


class _ReplyFault:
    __slots__ = ("_scope",)

    def __init__(self, scope: ErrorScope) -> None:
        self._scope = scope

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        if isinstance(e, Exception):
            mapped = self._scope.reply_error(e)
            if mapped is not e:
                raise mapped from e


class Scoped(Protocol):
    def error_scope(self) -> ErrorScope: ...


F = TypeVar("F", bound=Callable[..., Any])


def upstream_call(fn: F) -> F:
    """Decorate a provider method (coroutine or async generator) so only ProviderErrors escape it.

    The method's whole body runs inside `self.error_scope().reply()`; code that translates the
    client's body wraps itself in `.request()` first, so its failures are the request's fault.
    """
    # The scope is built only when something fails: the happy path pays one try block.
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def gen(self: Scoped, *args: Any, **kw: Any) -> AsyncIterator[Any]:
            agen = fn(self, *args, **kw)
            try:
                try:
                    async for item in agen:
                        yield item
                finally:
                    # closed now, not when collected: its `async with` releases the upstream connection
                    await agen.aclose()
            except Exception as e:
                mapped = self.error_scope().reply_error(e)
                if mapped is e:
                    raise
                raise mapped from e
        return gen  # type: ignore[return-value]

    @functools.wraps(fn)
    async def call(self: Scoped, *args: Any, **kw: Any) -> Any:
        try:
            return await fn(self, *args, **kw)
        except Exception as e:
            mapped = self.error_scope().reply_error(e)
            if mapped is e:
                raise
            raise mapped from e
    return call  # type: ignore[return-value]
