"""The LLMs that explain the numbers: OpenAI (official SDK), Gemini (google-genai), or our router.

Each backend turns one (system, user) prompt into an `LLMAnswer` naming the model that wrote
it, and maps every failure onto the stack's `ProviderError` classes so the service can say why
a report is statistics-only. SDKs are imported lazily: nothing opens a client at import time,
and a missing key is an `AuthError` at call time (the report then says which variable to set).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from wilton_core.config import GEMINI_KEY_ENVS
from wilton_core.errors import AuthError, BadRequestError, UnavailableError
from wilton_core.providers.errors_map import error_from_http

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_GEMINI_MODEL",
    "DEFAULT_OPENAI_MODEL",
    "GEMINI_KEY_ENVS",
    "GeminiBackend",
    "InsightBackend",
    "LLMAnswer",
    "OpenAIBackend",
    "RouterBackend",
    "default_backend_name",
    "make_backend",
]

BackendName = Literal["openai", "gemini", "local"]
BACKEND_NAMES: tuple[str, ...] = ("openai", "gemini", "local")
DEFAULT_OPENAI_MODEL = "gpt-4o"
DEFAULT_GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_BASE_URL_ENVS = ("WILTON_GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")


@dataclass(slots=True)
class LLMAnswer:
    text: str
    model: str            # the model that wrote it, as the upstream reported it
    backend: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class InsightBackend(Protocol):
    name: str

    async def complete(self, system: str, user: str, max_tokens: int) -> LLMAnswer: ...

    async def aclose(self) -> None: ...


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for n in names:
        if environ.get(n):
            return environ[n]
    return None


def default_backend_name(environ: Mapping[str, str] | None = None) -> BackendName:
    """Local-first: the router unless an API key is set, then OpenAI (the seed's default)."""
    env = os.environ if environ is None else environ
    if env.get("OPENAI_API_KEY") or _first(env, GEMINI_KEY_ENVS):
        return "openai"
    return "local"


# ------------------------------------------------------------------ OpenAI (official SDK)


class OpenAIBackend:
    name = "openai"

    def __init__(self, *, api_key: str | None, base_url: str | None = None,
                 model: str = DEFAULT_OPENAI_MODEL, timeout_s: float = 120.0, max_retries: int = 1) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self.model = model
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._client: Any = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **kw: Any) -> OpenAIBackend:
        return cls(api_key=environ.get("OPENAI_API_KEY") or None,
                   base_url=environ.get("OPENAI_BASE_URL") or None, **kw)

    async def complete(self, system: str, user: str, max_tokens: int) -> LLMAnswer:
        if not self._api_key:
            raise AuthError("no OpenAI key: set OPENAI_API_KEY", provider=self.name, model=self.model)
        import openai

        if self._client is None:
            self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self._base_url,
                                              timeout=self._timeout_s, max_retries=self._max_retries)
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                max_tokens=max_tokens,
            )
        except openai.APIStatusError as e:
            raise error_from_http(e.status_code, e.response.headers, _sdk_message(e), provider=self.name,
                                  model=self.model, secrets=(self._api_key,)) from None
        except openai.APIConnectionError as e:  # includes timeouts
            raise UnavailableError(f"OpenAI unreachable: {type(e).__name__}", provider=self.name,
                                   model=self.model) from None
        completion = raw.parse()
        if not completion.choices or completion.choices[0].message.content is None:
            raise UnavailableError("OpenAI returned no text", provider=self.name, model=self.model)
        usage = completion.usage
        return LLMAnswer(
            text=completion.choices[0].message.content,
            model=raw.headers.get("x-wilton-model") or completion.model or self.model,
            backend=self.name,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _sdk_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])[:300]
    return type(e).__name__


# ------------------------------------------------------------------ Gemini (google-genai)


class GeminiBackend:
    name = "gemini"

    def __init__(self, *, api_key: str | None, base_url: str | None = None,
                 model: str = DEFAULT_GEMINI_MODEL, timeout_s: float = 120.0) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self.model = model
        self._timeout_s = timeout_s
        self._client: Any = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **kw: Any) -> GeminiBackend:
        return cls(api_key=_first(environ, GEMINI_KEY_ENVS), base_url=_first(environ, GEMINI_BASE_URL_ENVS),
                   **kw)

    async def complete(self, system: str, user: str, max_tokens: int) -> LLMAnswer:
        if not self._api_key:
            raise AuthError(f"no Gemini key: set {' or '.join(GEMINI_KEY_ENVS)}", provider=self.name,
                            model=self.model)
        from google import genai
        from google.genai import errors as genai_errors
        from google.genai import types

        if self._client is None:
            # Explicit vertexai=False and base_url: the SDK would otherwise read its own env vars.
            self._client = genai.Client(
                vertexai=False, api_key=self._api_key,
                http_options=types.HttpOptions(base_url=self._base_url, timeout=int(self._timeout_s * 1000)),
            )
        try:
            resp = await self._client.aio.models.generate_content(
                model=self.model,
                contents=user,
                config=types.GenerateContentConfig(system_instruction=system, max_output_tokens=max_tokens),
            )
        except genai_errors.APIError as e:
            headers = getattr(getattr(e, "response", None), "headers", None) or {}
            raise error_from_http(int(e.code or 0), headers, str(e.message or e.status or ""), provider=self.name,
                                  model=self.model, secrets=(self._api_key,)) from None
        except _transport_errors() as e:
            raise UnavailableError(f"Gemini unreachable: {type(e).__name__}", provider=self.name,
                                   model=self.model) from None
        text = resp.text
        if not text:
            raise UnavailableError("Gemini returned no text", provider=self.name, model=self.model)
        um = resp.usage_metadata
        return LLMAnswer(
            text=text,
            model=resp.model_version or self.model,
            backend=self.name,
            prompt_tokens=(um.prompt_token_count or 0) if um else 0,
            completion_tokens=(um.candidates_token_count or 0) if um else 0,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()
            self._client = None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of whichever HTTP library the SDK picked (httpx or httpx2)."""
    classes: list[type[BaseException]] = [httpx.TransportError, OSError, TimeoutError]
    try:
        import httpx2

        classes.append(httpx2.TransportError)
    except ImportError:  # pragma: no cover - depends on the SDK's own dependency set
        pass
    return tuple(classes)


# ------------------------------------------------------------------ our own router


class RouterBackend:
    """Local only: ask the stack itself with `model="local"`, which the router restricts to local
    models (fallbacks included), so a report never spends API money. The router names the model
    it chose in `x-wilton-model` and whether it is local in `x-wilton-local`."""

    name = "local"

    def __init__(self, *, base_url: str, api_key: str | None = None, model: str = "local",
                 timeout_s: float = 300.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.model = model
        self._timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def complete(self, system: str, user: str, max_tokens: int) -> LLMAnswer:
        if self._client is None:
            headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(base_url=self._base_url, transport=self._transport,
                                             timeout=self._timeout_s, headers=headers)
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": max_tokens,
        }
        try:
            r = await self._client.post("/v1/chat/completions", json=body)
        except httpx.TransportError as e:
            raise UnavailableError(f"router at {self._base_url} unreachable: {type(e).__name__}",
                                   provider=self.name, model=self.model) from None
        if r.status_code != 200:
            raise error_from_http(r.status_code, r.headers, r.content, provider=self.name, model=self.model,
                                  secrets=(self._api_key,))
        try:
            data = r.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise UnavailableError("router returned a malformed completion", provider=self.name,
                                   model=self.model) from None
        if not isinstance(text, str) or not text:
            raise UnavailableError("router returned no text", provider=self.name, model=self.model)
        if self.model == "local" and r.headers.get("x-wilton-local", "true").lower() == "false":
            # a router that ignored the restriction: do not present an API model's text as local
            raise BadRequestError(f"router answered with API model {r.headers.get('x-wilton-model')!r} "
                                  "although a local model was asked for", provider=self.name, model=self.model)
        usage = data.get("usage") or {}
        return LLMAnswer(
            text=text,
            model=r.headers.get("x-wilton-model") or str(data.get("model") or self.model),
            backend=self.name,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def make_backend(
    name: str,
    *,
    environ: Mapping[str, str] | None = None,
    router_url: str = "http://127.0.0.1:8080",
    router_api_key: str | None = None,
    openai_model: str = DEFAULT_OPENAI_MODEL,
    gemini_model: str = DEFAULT_GEMINI_MODEL,
    router_transport: httpx.AsyncBaseTransport | None = None,
    max_retries: int = 1,
) -> InsightBackend:
    env = os.environ if environ is None else environ
    if name == "openai":
        return OpenAIBackend.from_env(env, model=openai_model, max_retries=max_retries)
    if name == "gemini":
        return GeminiBackend.from_env(env, model=gemini_model)
    if name == "local":
        return RouterBackend(base_url=router_url,
                             api_key=router_api_key, transport=router_transport)
    raise ValueError(f"unknown insight model backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
