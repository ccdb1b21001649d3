"""Gemini through Google's maintained `google-genai` SDK, translated to and from OpenAI shapes.

The SDK is imported lazily (it is heavy) and is given our own httpx clients, so the transport
is injectable like every other provider's and a local fake server or MockTransport works.
The translation to the SDK's dict shapes is a pure function (`to_gemini_request`).
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from wilton_core.config import ModelConfig
from wilton_core.errors import AuthError, ProviderError, UnavailableError
from wilton_core.providers._common import (
    POOL_LIMITS,
    ChunkFactory,
    RequestShape,
    estimate_tokens,
    make_client,
    max_tokens_of,
    new_id,
    parse_data_url,
    prompt_chars,
    stop_list,
)
from wilton_core.providers.base import Embeddings, check_embeddings
from wilton_core.providers.errors_map import ErrorScope, error_from_http, upstream_call
from wilton_core.providers.http_base import UpstreamProvider
from wilton_core.providers.limits import Deadline
from wilton_core.types import Completion, Usage, token_count

__all__ = ["GeminiProvider", "finish_reason_of", "to_gemini_request"]

DEFAULT_GEMINI_URL = "https://generativelanguage.googleapis.com"
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
           "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
           "IMAGE_SAFETY": "content_filter"}


def _parts(content: Any, model_id: str, shape: RequestShape, where: str) -> list[dict[str, Any]]:
    content = shape.parts(content, where)
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for p in content:
        if p.get("type") == "text":
            parts.append({"text": p.get("text", "")})
        elif p.get("type") == "image_url":
            iu = p.get("image_url")
            url = str(iu.get("url") if isinstance(iu, dict) else iu)
            if url.startswith("data:"):
                mime, data = parse_data_url(url, provider="gemini", model=model_id)
                parts.append({"inline_data": {"mime_type": mime, "data": base64.b64decode(data)}})
            else:
                mime = mimetypes.guess_type(url)[0] or "image/jpeg"
                parts.append({"file_data": {"file_uri": url, "mime_type": mime}})
    return parts


def _json_obj(s: Any) -> Any:
    if not isinstance(s, str):
        return s or {}
    try:
        return orjson.loads(s or "{}")
    except orjson.JSONDecodeError:
        return {"result": s}


def to_gemini_request(body: Mapping[str, Any], model: ModelConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(contents, config) dicts for `generate_content` from an OpenAI body (pure)."""
    shape = RequestShape("gemini", model.id)
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for i, m in enumerate(shape.messages(body)):
        role = m.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(p["text"] for p in _parts(m.get("content"), model.id, shape, f"{where}.content")
                          if "text" in p)
            continue
        if role == "tool":
            call_id, fallback = m.get("tool_call_id", ""), m.get("name") or "tool"
            if not isinstance(call_id, str) or not isinstance(fallback, str):
                raise shape.fail("must be a string", f"{where}.tool_call_id")
            name = names.get(call_id, fallback)
            text = shape.parts(m.get("content"), f"{where}.content")
            text = text if isinstance(text, str) else "\n".join(p.get("text", "") for p in text or ())
            resp = _json_obj(text)
            part = {"function_response": {"name": name,
                                          "response": resp if isinstance(resp, dict) else {"result": resp}}}
            if contents and contents[-1]["role"] == "user" and "function_response" in contents[-1]["parts"][0]:
                contents[-1]["parts"].append(part)  # parallel tool results go in one turn
            else:
                contents.append({"role": "user", "parts": [part]})
            continue
        parts = _parts(m.get("content"), model.id, shape, f"{where}.content")
        if role == "assistant":
            for tc in shape.tool_calls(m, where):
                fn = tc["function"]
                names[tc.get("id", "")] = fn.get("name", "")
                parts.append({"function_call": {"name": fn.get("name", ""), "args": _json_obj(fn.get("arguments"))}})
        contents.append({"role": "model" if role == "assistant" else "user", "parts": parts or [{"text": ""}]})

    if not contents and system:
        # OpenAI answers a system-only conversation; Gemini requires contents ("contents are
        # required"): the instructions become the one user turn.
        contents, system = [{"role": "user", "parts": [{"text": "\n\n".join(system)}]}], []
    if not contents:
        raise shape.fail("needs at least one message", "messages")
    config: dict[str, Any] = {}
    if system:
        config["system_instruction"] = "\n\n".join(system)
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed"),
                         ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty"),
                         ("n", "candidate_count")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    limit = max_tokens_of(body, model)
    if limit:
        config["max_output_tokens"] = limit
    stops = stop_list(body.get("stop"))
    if stops:
        config["stop_sequences"] = stops
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
        config["response_mime_type"] = "application/json"
        schema = (rf.get("json_schema") or {}).get("schema")
        if schema:
            config["response_json_schema"] = schema
    tools = shape.tools(body)
    choice = body.get("tool_choice")
    if tools and choice != "none":
        config["tools"] = [{"function_declarations": [
            {"name": f.get("name", ""), "description": f.get("description", ""),
             **({"parameters_json_schema": f["parameters"]} if f.get("parameters") else {})}
            for f in tools]}]
        if choice == "required":
            config["tool_config"] = {"function_calling_config": {"mode": "ANY"}}
        elif isinstance(choice, dict):
            forced = (choice.get("function") or {}).get("name")
            config["tool_config"] = {"function_calling_config": {"mode": "ANY", "allowed_function_names": [forced]}}
    return contents, config


def finish_reason_of(gemini_reason: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_calls"
    return _FINISH.get(gemini_reason or "STOP", "stop")


def _split(response: Any) -> tuple[str, list[dict[str, Any]], str | None]:
    """(text, tool calls, finish reason name) of one SDK GenerateContentResponse."""
    cands = response.candidates or []
    if not cands:
        return "", [], None
    cand = cands[0]
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (cand.content.parts if cand.content and cand.content.parts else []):
        if part.text and not part.thought:
            text.append(part.text)
        if part.function_call:
            fc = part.function_call
            calls.append({"id": fc.id or new_id("call_"), "type": "function",
                          "function": {"name": fc.name or "", "arguments": orjson.dumps(fc.args or {}).decode()}})
    reason = cand.finish_reason
    return "".join(text), calls, (getattr(reason, "value", None) or str(reason)) if reason else None


def _usage(response: Any) -> Usage | None:
    um = getattr(response, "usage_metadata", None)
    if um is None or um.prompt_token_count is None:
        return None
    return Usage.of(um.prompt_token_count,
                    token_count(um.candidates_token_count) + token_count(um.thoughts_token_count))


class GeminiProvider(UpstreamProvider):
    name = "gemini"
    default_base_url = DEFAULT_GEMINI_URL

    # made at the first call, and again when the key in the environment changes (the SDK client
    # holds it); upstream_http does not apply: the SDK's client is httpx
    _http: httpx.AsyncClient | None = None
    _sync_http: httpx.Client | None = None
    _sdk: Any = None
    _sdk_key: str | None = None

    def _client(self) -> tuple[Any, str]:
        """The SDK client for the current key (re-made when the key in the environment changes)."""
        key = self.api_key()
        if not key:
            names = ", ".join(self.model.key_env_names) or "(none configured)"
            raise AuthError(f"gemini {self.model.id}: no API key set (env {names})",
                            provider=self.name, model=self.model.id)
        if self._sdk is None or key != self._sdk_key:
            from google import genai  # lazy: the SDK takes a noticeable time to import
            from google.genai import types

            if self._http is None:
                self._http = make_client(self.model, self._transport, self._limits)
                # The SDK builds a sync client too; handing it one skips its SSL set-up, and
                # its transport fails loudly should the async path ever touch it.
                self._sync_http = httpx.Client(timeout=self._http.timeout, limits=POOL_LIMITS,
                                               transport=httpx.MockTransport(lambda r: httpx.Response(501)))
            self._sdk = genai.Client(api_key=key, http_options=types.HttpOptions(
                base_url=self._base, api_version="v1beta",
                # Without it the SDK passes timeout=None per request: no timeout at all.
                timeout=int(self.model.timeout_s * 1000),
                httpx_async_client=self._http, httpx_client=self._sync_http))
            self._sdk_key = key
        return self._sdk, key

    def error_scope(self) -> ErrorScope:
        return ErrorScope(self.name, self.model.id, (self.api_key(),), self._sdk_error)

    def _sdk_error(self, e: Exception) -> ProviderError | None:
        """The SDK's own HTTP errors carry the upstream's status: map them like any HTTP reply."""
        from google.genai import errors as genai_errors

        if not isinstance(e, genai_errors.APIError):
            return None
        resp = getattr(e, "response", None)
        headers = getattr(resp, "headers", None) or {}
        body = e.details if e.details else (e.message or "")
        code = e.code if isinstance(e.code, int) and 100 <= e.code <= 599 else 502
        return error_from_http(code, headers, body, provider=self.name, model=self.model.id,
                               secrets=(self.api_key(),))

    def _request(self, body: Mapping[str, Any]) -> tuple[list[Any], Any]:
        """The SDK's typed (contents, config): validated here, so a wrong shape is the request's fault."""
        from google.genai import types

        with self.error_scope().request():
            contents, config = to_gemini_request(body, self.model)
            return ([types.Content.model_validate(c) for c in contents],
                    types.GenerateContentConfig.model_validate(config) if config else None)

    @upstream_call
    async def complete(self, body: Mapping[str, Any]) -> Completion:
        sdk, _key = self._client()
        contents, config = self._request(body)
        resp = await Deadline(self._limits, self._label).run(
            sdk.aio.models.generate_content(model=self.model.model, contents=contents, config=config))
        text, calls, reason = _split(resp)
        if reason is None and not text and not calls:
            raise UnavailableError(f"gemini {self.model.id}: reply has no candidates",
                                   provider=self.name, model=self.model.id)
        usage = _usage(resp) or Usage(estimate_tokens(prompt_chars(body.get("messages"))),
                                      estimate_tokens(len(text)))
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        data = ChunkFactory(str(resp.model_version or self.model.model)).completion(
            message, finish_reason_of(reason, bool(calls)), usage)
        return Completion(data=data, usage=usage)

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._stream(body)

    @upstream_call
    async def _stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        sdk, _key = self._client()
        contents, config = self._request(body)
        cf = ChunkFactory(self.model.model)
        usage: Usage | None = None
        reason: str | None = None
        n_calls = 0
        out_chars = 0
        first = True
        deadline = Deadline(self._limits, self._label)
        it = await deadline.run(sdk.aio.models.generate_content_stream(
            model=self.model.model, contents=contents, config=config))
        async for resp in deadline.events(it):
            text, calls, r = _split(resp)
            reason = r or reason
            usage = _usage(resp) or usage
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if text or first:
                delta["content"] = text
            if calls:
                delta["tool_calls"] = [{"index": n_calls + i, **c} for i, c in enumerate(calls)]
                n_calls += len(calls)
            out_chars += len(text) + sum(len(c["function"]["arguments"]) for c in calls)
            if first or delta:
                yield cf.chunk(delta)
                first = False
        if reason is None:
            raise UnavailableError(f"gemini {self.model.id}: stream ended without a finish reason",
                                   provider=self.name, model=self.model.id)
        yield cf.chunk({}, finish_reason_of(reason, n_calls > 0))
        yield cf.usage_chunk(usage or Usage(estimate_tokens(prompt_chars(body.get("messages"))),
                                            estimate_tokens(out_chars)))

    @upstream_call
    async def embed(self, inputs: list[str], dimensions: int | None = None) -> Embeddings:
        """embedContent through the SDK (one batch call for all inputs)."""
        sdk, _key = self._client()
        resp = await Deadline(self._limits, self._label).run(sdk.aio.models.embed_content(
            model=self.model.model, contents=inputs,
            config={"output_dimensionality": dimensions} if dimensions is not None else None))
        vectors = check_embeddings([list(e.values or []) for e in resp.embeddings or []], len(inputs),
                                   provider=self.name, model=self.model.id)
        # the Gemini API reports no token count for embeddings: the usual estimate
        return Embeddings(vectors, Usage(estimate_tokens(sum(len(t) for t in inputs)), 0))

    @upstream_call
    async def list_models(self) -> list[str]:
        sdk, _key = self._client()

        async def names() -> list[str]:
            pager = await sdk.aio.models.list()
            return [str(m.name).removeprefix("models/") async for m in pager]

        return await Deadline(self._limits, self._label).run(names())

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._sync_http is not None:
            self._sync_http.close()
        self._http = self._sync_http = self._sdk = None
