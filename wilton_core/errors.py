"""The one exception tree of the stack.

WiltonError
├── ConfigError            bad config file / settings (readable, names the model and key)
├── StoreError             the shared store is unreachable or refused a write
├── RequestError           a client's request is wrong (maps to HTTP 4xx on the gateway)
│   └── UnknownModelError  `model` names no configured model
├── NoHealthyModelError    every eligible model failed, is cooling down or rate limited
│                          (HTTP 503, or 429 when rate limits alone stood in the way;
│                          `retry_after`: when a capable model is expected back)
└── ProviderError          an upstream LLM call failed; the subclass says how
    ├── RateLimitedError   429 / quota; carries retry_after seconds when the upstream sent one
    ├── UnavailableError   connection refused/reset, timeout, 5xx, malformed upstream reply
    │   ├── UpstreamTimeoutError     the upstream call outran its deadline (total or between data)
    │   └── ResponseTooLargeError    the upstream's reply (or one stream event) exceeded its size cap
    ├── BadRequestError    the upstream rejected the request itself (4xx other than below)
    ├── AuthError          401/403: missing or wrong key
    ├── ContextTooLongError the prompt does not fit the model's window
    └── InternalError      a bug of ours on the way to or from the upstream (never the model's fault)

Provider errors are the stack's single error vocabulary: every provider maps its own
failures onto these classes, and the fallback chain decides from the class alone. Who is to
blame decides health (`ProviderError.blame`):

- "upstream": the model is broken (UnavailableError, AuthError) — counts toward its breaker;
- "request": the request cannot be served by this model as sent (BadRequestError,
  ContextTooLongError) — the next model may take it; the model's health is untouched;
- "rate_limit": the model is healthy but busy (RateLimitedError) — it is deferred, not broken;
- "internal": our own bug (InternalError) — logged, never held against the model.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadRequestError",
    "ConfigError",
    "ContextTooLongError",
    "InternalError",
    "NoHealthyModelError",
    "ProviderError",
    "RateLimitedError",
    "RequestError",
    "ResponseTooLargeError",
    "StoreError",
    "UnavailableError",
    "UnknownModelError",
    "UpstreamTimeoutError",
    "WiltonError",
]


class WiltonError(Exception):
    """Base of every error the stack raises on purpose."""


class ConfigError(WiltonError):
    """The configuration (file, environment or flags) is invalid."""


class StoreError(WiltonError):
    """The shared store could not be reached or used."""


class RequestError(WiltonError):
    """The client's request is invalid; rendered as an OpenAI-style 4xx."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status
        self.type = type_


class UnknownModelError(RequestError):
    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__(
            f"The model '{model}' does not exist. Configured models: {', '.join(known) or '(none)'}"
            " (or use 'auto' to let the router choose).",
            param="model",
            code="model_not_found",
            status=404,
        )


class NoHealthyModelError(WiltonError):
    """No eligible model could serve the request; `tried` lists (model_id, error class) pairs."""

    def __init__(self, message: str, tried: list[tuple[str, str]], *, retry_after: float | None = None,
                 rate_limited: bool = False, rejected: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tried = tried
        self.retry_after = retry_after
        # every model that could have served it was deferred by a rate limit (answer 429, not 503)
        self.rate_limited = rate_limited
        # every model refused the request itself (its kind: bad_request or context_too_long): the
        # client's to fix, answered 400, never an outage
        self.rejected = rejected

    @property
    def status(self) -> int:
        return 400 if self.rejected else 429 if self.rate_limited else 503

    @property
    def type_code(self) -> tuple[str, str]:
        """OpenAI's error `type` and `code` for this refusal."""
        if self.rejected:
            return "invalid_request_error", ("context_length_exceeded" if self.rejected == "context_too_long"
                                             else "upstream_rejected_request")
        if self.rate_limited:
            return "rate_limit_error", "rate_limit_exceeded"
        return "service_unavailable", "no_healthy_model"


class ProviderError(WiltonError):
    """An upstream call failed. `kind` is the stable short name used in the ledger and metrics."""

    kind = "provider_error"
    retryable = False
    blame = "upstream"  # see the module doc: who caused it decides whether health suffers

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after = retry_after


class RateLimitedError(ProviderError):
    kind = "rate_limited"
    retryable = True
    blame = "rate_limit"


class UnavailableError(ProviderError):
    kind = "unavailable"
    retryable = True


class BadRequestError(ProviderError):
    kind = "bad_request"
    blame = "request"


class AuthError(ProviderError):
    kind = "auth"


class ContextTooLongError(ProviderError):
    kind = "context_too_long"
    blame = "request"


class InternalError(ProviderError):
    kind = "internal_error"
    blame = "internal"


# -- upstream limits (providers/limits.py): upstream failures, so they count against the model ----

class UpstreamTimeoutError(UnavailableError):
    kind = "timeout"


class ResponseTooLargeError(UnavailableError):
    kind = "response_too_large"
