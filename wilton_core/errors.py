"""The one exception tree of the stack.

WiltonError
├── ConfigError            bad config file / settings (readable, names the model and key)
├── StoreError             the shared store is unreachable or refused a write
├── RequestError           a client's request is wrong (maps to HTTP 4xx on the gateway)
│   └── UnknownModelError  `model` names no configured model
├── NoHealthyModelError    every eligible model failed or is cooling down (HTTP 503)
└── ProviderError          an upstream LLM call failed; the subclass says how
    ├── RateLimitedError   429 / quota; carries retry_after seconds when the upstream sent one
    ├── UnavailableError   connection refused/reset, timeout, 5xx, malformed upstream reply
    │   ├── UpstreamTimeoutError     the upstream call outran its deadline (total or between data)
    │   └── ResponseTooLargeError    the upstream's reply (or one stream event) exceeded its size cap
    ├── BadRequestError    the upstream rejected the request itself (4xx other than below)
    ├── AuthError          401/403: missing or wrong key
    └── ContextTooLongError the prompt does not fit the model's window

Provider errors are the stack's single error vocabulary: every provider maps its own
failures onto these classes, and the fallback chain decides from the class alone.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadRequestError",
    "ConfigError",
    "ContextTooLongError",
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

    def __init__(self, message: str, tried: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.message = message
        self.tried = tried


class ProviderError(WiltonError):
    """An upstream call failed. `kind` is the stable short name used in the ledger and metrics."""

    kind = "provider_error"
    retryable = False

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


class UnavailableError(ProviderError):
    kind = "unavailable"
    retryable = True


class BadRequestError(ProviderError):
    kind = "bad_request"


class AuthError(ProviderError):
    kind = "auth"


class ContextTooLongError(ProviderError):
    kind = "context_too_long"


# -- upstream limits (providers/limits.py): upstream failures, so they count against the model ----

class UpstreamTimeoutError(UnavailableError):
    kind = "timeout"


class ResponseTooLargeError(UnavailableError):
    kind = "response_too_large"
