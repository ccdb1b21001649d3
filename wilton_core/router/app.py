"""The gateway's HTTP face: a raw ASGI app (no framework on the request path).

A framework would cost more per request than everything else the router does; the surface is
small (five routes), so routing is a dict lookup. The OpenAPI schema is still served, built from
pydantic models in openapi.py, so clients and fuzzers can read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson

from wilton_core.access.caller import Caller
from wilton_core.access.gate import Gate, Refusal
from wilton_core.aio import within
from wilton_core.audio.service import AudioService
from wilton_core.errors import NoHealthyModelError, RequestError
from wilton_core.router.asgi import Receive, Scope, Send
from wilton_core.router.audio_routes import CALLER_KEY, AudioRoutes
from wilton_core.router.endpoints import ApiError, Endpoint, JsonReply, StreamReply
from wilton_core.router.render import chat_sse, routing_headers
from wilton_core.router.request_ids import client_request_id
from wilton_core.router.service import RouterService
from wilton_core.router.wire import error_body, validate_chat_request

__all__ = ["RouterApp"]

log = logging.getLogger("wilton.router")


_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]


class _TooLarge(Exception):
    pass


def retry_after_headers(seconds: float | None) -> list[tuple[bytes, bytes]]:
    """`Retry-After` in whole seconds (rounded up, at least 1) when a time is known."""
    if seconds is None:
        return []
    return [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]


def no_model_body(e: NoHealthyModelError, detail: bool = True) -> bytes:
    """400 when every model refused the request itself, 429 `rate_limit_exceeded` when only rate
    limits stood in the way, else 503 `no_healthy_model`. `detail` (admins, or no keys): which
    models were tried and how each failed; other keys get the outcome without the internals."""
    type_, code = e.type_code
    if not detail:
        message = {"rate_limit_exceeded": "Every model that can serve this request is rate limited; retry later.",
                   "no_healthy_model": "No model that can serve this request is available right now; retry later.",
                   }.get(code, e.message)
        return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    return orjson.dumps({"error": {"message": e.message, "type": type_, "param": None, "code": code,
                                   "tried": [{"model": m, "error": k} for m, k in e.tried]}})


async def _send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, status: int, message: str, type_: str, param: str | None = None,
                      code: str | None = None, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send_json(send, status, error_body(message, type_, param, code), extra)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for k, v in scope.get("headers", ()):
        if k == b"content-length":
            try:
                if int(v) > limit:
                    raise _TooLarge
            except ValueError:
                pass
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ConnectionResetError
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not msg.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _pump(chunks: AsyncIterator[bytes], send: Send) -> None:
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _relay(chunks: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
    """Send a stream until it ends or the client leaves; leaving cancels the relay, which stops
    reading the upstream and records the request as client_disconnected (the disconnect is watched
    on receive: an ASGI server's send need not fail on a closed connection).

    The stream is pumped in this task; one watcher task cancels it when the client leaves."""
    task = asyncio.current_task()
    assert task is not None
    left = False

    async def watch() -> None:
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass
        left = True
        task.cancel()

    cancelling = task.cancelling()
    watcher = asyncio.ensure_future(watch())
    try:
        await _pump(chunks, send)
    except asyncio.CancelledError:
        if left and task.uncancel() <= cancelling:
            return  # the client left: the relay stopped, and the stream recorded it
        raise
    finally:
        watcher.cancel()


def _more_apis(service: RouterService) -> dict[str, Endpoint]:
    """h6 (issue 17): POST routes beyond chat completions, each an Endpoint (see endpoints.py)."""
    from wilton_core.router.api_anthropic import AnthropicCountTokens, AnthropicMessages
    from wilton_core.router.api_embeddings import Embeddings
    from wilton_core.router.api_responses import Responses
    from wilton_core.router.feedback import Feedback

    apis: dict[str, Endpoint] = {}
    for prefix in ("/v1", ""):
        apis[prefix + "/messages"] = AnthropicMessages(service)
        apis[prefix + "/messages/count_tokens"] = AnthropicCountTokens(service)
        apis[prefix + "/responses"] = Responses(service)
        apis[prefix + "/embeddings"] = Embeddings(service)
        apis[prefix + "/feedback"] = Feedback.of(service)  # issue 16: routing labels from apps
    return apis


def _is_local(model: Mapping[str, object]) -> bool:
    facts = model.get("wilton")
    return isinstance(facts, dict) and bool(facts.get("is_local"))


class RouterApp:
    def __init__(self, service: RouterService, *, metrics: Callable[[], tuple[bytes, str]] | None = None,
                 openapi: Callable[[], dict[str, Any]] | None = None, body_timeout_s: float = 30.0,
                 max_headers: int = 100, gate: Gate | None = None, audio: AudioRoutes | None = None) -> None:
        self.service = service
        self.gate = gate  # access (issue 14): keys, allow-lists, budgets, limits, local-only
        # a client that sends its body slower than this is cut: the HTTP server bounds the head,
        # the app bounds the body (whatever server runs it)
        self.body_timeout_s = body_timeout_s
        self.max_headers = max_headers
        # --- voice bridge (issue 19): audio endpoints when audio models are configured
        if audio is None and service.config.audio_models:
            audio = AudioRoutes(AudioService(service.config, ledger=service.ledger, latency=service.latency,
                                             replica=service.replica))
        self.audio = audio
        # --- end voice bridge
        self._metrics = metrics
        self._openapi = openapi
        self._openapi_cache: bytes | None = None
        self._get: dict[str, Callable[[Send], Awaitable[None]]] = {
            "/v1/models": self._models,
            "/models": self._models,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics_route,
            "/openapi.json": self._openapi_route,
        }
        # ---- begin h6 (issue 17): more client APIs; translation at the edge, see endpoints.py ----
        self._apis: dict[str, Endpoint] = _more_apis(service)
        # ---- end h6 ----

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.service.start()
                    if self.gate is not None:
                        await self.gate.start()
                except Exception as e:
                    log.error("router failed to start: %s", e)
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                if self.audio is not None:  # voice bridge: load the embedded model off the loop
                    self.audio.service.start()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if self.audio is not None:  # voice bridge
                    await self.audio.service.aclose()
                await self.service.stop()
                if self.gate is not None:
                    await self.gate.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        if len(scope["headers"]) > self.max_headers:
            await _send_error(send, 431, f"More than {self.max_headers} request headers.", "invalid_request_error",
                              None, "too_many_headers", [(b"connection", b"close")])
            return
        if path in ("/v1/chat/completions", "/chat/completions"):
            if method != "POST":
                await _send_error(send, 405, f"Method {method} not allowed on {path}; use POST.",
                                  "invalid_request_error", None, "method_not_allowed", [(b"allow", b"POST")])
                return
            await self._chat(scope, receive, send)
            return
        if path.startswith("/admin/") and self.gate is not None:  # access (issue 14): master key only
            from wilton_core.access.admin import handle_admin

            await handle_admin(self.gate, scope, receive, send)
            return
        # ---- begin h6 (issue 17) ----
        api = self._apis.get(path)
        if api is not None:
            if method != "POST":
                await self._send_reply(send, api.render_error(ApiError(
                    405, f"Method {method} not allowed on {path}; use POST.", code="method_not_allowed")))
                return
            await self._api(api, scope, receive, send)
            return
        if path.startswith(("/v1/models/", "/models/")) and method in ("GET", "HEAD"):
            model_id = path.split("/models/", 1)[1]
            if self.gate is not None:  # access (issue 14): a key sees only the models it may use
                who = self.gate.identify(scope.get("headers", ()))
                if isinstance(who, Refusal):
                    await _send_json(send, who.status, who.body(), list(who.headers))
                    return
                if not who.admin and (model_id not in self.service.runtimes
                                      or not who.permits(model_id, self.service.runtimes[model_id].cfg.is_local)):
                    await _send_error(send, 404, f"The model '{model_id[:200]}' does not exist.",
                                      "invalid_request_error", "model", "model_not_found")
                    return
                if not who.admin:
                    await _send_json(send, 200, orjson.dumps({"id": model_id, "object": "model",
                                                              "created": int(self.service.started_at),
                                                              "owned_by": "wilton"}))
                    return
            await self._model(send, model_id)
            return
        # ---- end h6 ----
        # --- voice bridge (issue 19): handlers in audio_routes.py
        if self.audio is not None and path in self.audio.routes:
            if method != "POST":
                await _send_error(send, 405, f"Method {method} not allowed on {path}; use POST.",
                                  "invalid_request_error", None, "method_not_allowed", [(b"allow", b"POST")])
                return
            if self.gate is not None:  # access (issue 14): keys, budgets, limits and local-only hold here too
                verdict = await self.gate.check(scope.get("headers", ()), {"model": "auto"})
                if isinstance(verdict, Refusal):
                    await _send_json(send, verdict.status, verdict.body(), list(verdict.headers))
                    return
                scope[CALLER_KEY] = verdict
            await self.audio.handle(scope, receive, send)
            return
        # --- end voice bridge
        handler = self._get.get(path)
        if handler is None:
            await _send_error(send, 404, f"Unknown path {path}.", "invalid_request_error", None, "not_found")
            return
        if method not in ("GET", "HEAD"):
            await _send_error(send, 405, f"Method {method} not allowed on {path}; use GET.",
                              "invalid_request_error", None, "method_not_allowed", [(b"allow", b"GET, HEAD")])
            return
        if handler == self._models and self.gate is not None:  # access (issue 14): what this key may see
            who = self.gate.identify(scope.get("headers", ()))
            if isinstance(who, Refusal):
                await _send_json(send, who.status, who.body(), list(who.headers))
            else:
                await self._list_models(send, who)
            return
        await handler(send)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        svc = self.service
        rid = client_request_id(scope.get("headers", ())) or svc.new_request_id()
        echo = [(b"x-request-id", rid.encode())]
        try:
            raw = await within(_read_body(scope, receive, svc.routing.max_body_bytes),
                               asyncio.get_running_loop().time() + self.body_timeout_s)
        except TimeoutError:
            await _send_error(send, 408, f"The request body did not arrive within {self.body_timeout_s:g} s.",
                              "invalid_request_error", None, "request_timeout", [(b"connection", b"close")])
            return
        except _TooLarge:
            await _send_error(send, 413, f"Request body exceeds the limit of {svc.routing.max_body_bytes} bytes.",
                              "invalid_request_error", None, "request_too_large")
            return
        except ConnectionResetError:
            # the body never arrived whole: the client left, or its chunked framing was malformed
            # (ASGI reports both as a disconnect); a refusal sent to a client that left is lost
            with contextlib.suppress(Exception):
                await _send_error(send, 400, "The request body is incomplete or malformed.", "invalid_request_error",
                                  None, "bad_request", [(b"connection", b"close")])
            return
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            await _send_error(send, 400, f"The request body is not valid JSON: {e.msg} at position {e.pos}.",
                              "invalid_request_error", None, "invalid_json")
            return
        caller: Caller | None = None
        if self.gate is not None:  # access (issue 14): a refusal is an OpenAI error and a ledger row
            verdict = await self.gate.check(scope.get("headers", ()), body)
            if isinstance(verdict, Refusal):
                await _send_json(send, verdict.status, verdict.body(), list(verdict.headers))
                return
            caller = verdict
        try:
            validate_chat_request(body)
            route = svc.decide(body, started, caller, rid)
            if body.get("stream"):
                out = await svc.stream(body, route)
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                sse = chat_sse(out, include_usage)
                try:
                    await send({"type": "http.response.start", "status": 200,
                                "headers": _SSE_HEADERS + routing_headers(out.facts, caller)})
                    await _relay(sse, receive, send)
                finally:
                    await sse.aclose()  # a client gone mid-stream: the upstream is closed, the row written
                return
            res = await svc.complete(body, route)
            await _send_json(send, 200, orjson.dumps(res.data), routing_headers(res.facts, caller))
        except RequestError as e:
            await _send_error(send, e.status, e.message, e.type, e.param, e.code, echo)
        except NoHealthyModelError as e:
            await _send_json(send, e.status, no_model_body(e, detail=caller is None or caller.admin),
                             retry_after_headers(e.retry_after) + echo)
        except Exception:
            # a bug must not leak a traceback to the client; the log keeps it for us
            log.exception("unhandled error on /v1/chat/completions")
            with contextlib.suppress(Exception):
                await _send_error(send, 500, "Internal error in the router; see its log.", "server_error",
                                  None, "internal_error", echo)

    # ---- begin h6 (issue 17): extra APIs and model lookup ----
    async def _model(self, send: Send, model_id: str) -> None:
        m = self.service.get_model(model_id)
        if m is None:
            await _send_error(send, 404, f"The model '{model_id[:200]}' does not exist.", "invalid_request_error",
                              "model", "model_not_found")
            return
        await _send_json(send, 200, orjson.dumps(m))

    async def _send_reply(self, send: Send, reply: JsonReply) -> None:
        await _send_json(send, reply.status, reply.body, reply.headers)

    async def _api(self, api: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        limit = self.service.routing.max_body_bytes
        rid = client_request_id(scope.get("headers", ()))
        echo = [(b"x-request-id", rid.encode())] if rid else []
        refused: ApiError | None = None
        extra: list[tuple[bytes, bytes]] = []
        try:
            raw = await within(_read_body(scope, receive, limit), asyncio.get_running_loop().time() + self.body_timeout_s)
            body = orjson.loads(raw)
        except TimeoutError:
            refused = ApiError(408, f"The request body did not arrive within {self.body_timeout_s:g} s.",
                               code="request_timeout")
            extra = [(b"connection", b"close")]
        except _TooLarge:
            refused = ApiError(413, f"Request body exceeds the limit of {limit} bytes.", code="request_too_large")
        except ConnectionResetError:
            refused = ApiError(400, "The request body is incomplete or malformed.", code="bad_request")
            extra = [(b"connection", b"close")]
        except orjson.JSONDecodeError as e:
            refused = ApiError(400, f"The request body is not valid JSON: {e.msg} at position {e.pos}.",
                               code="invalid_json")
        caller: Caller | None = None
        if refused is None and self.gate is not None:  # access (issue 14): the same gate as chat
            verdict = await self.gate.check(scope.get("headers", ()), body)
            if isinstance(verdict, Refusal):
                refused = ApiError(verdict.status, verdict.message, verdict.type, verdict.code, verdict.param)
                extra = list(verdict.headers)
            else:
                caller = verdict
        reply: JsonReply | StreamReply
        if refused is not None:
            reply = api.render_error(refused)
            reply.headers += extra + echo
            with contextlib.suppress(Exception):  # a refusal sent to a client that left is lost
                await self._send_reply(send, reply)
            return
        try:
            reply = await api.handle(body, rid, started, caller)
        except (RequestError, NoHealthyModelError) as e:
            err = ApiError.of(e)
            reply = api.render_error(err)
            reply.headers += err.retry_headers() + echo
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            reply = api.render_error(ApiError(500, "Internal error in the router; see its log.", "server_error",
                                              "internal_error"))
            reply.headers += echo
        if isinstance(reply, JsonReply):
            with contextlib.suppress(Exception):
                await self._send_reply(send, reply)
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + reply.headers})
        try:
            await _relay(reply.chunks, receive, send)  # a client that leaves cancels the relay
        except OSError:
            pass  # the client went away; closing the generator below ends the upstream and writes the row
        except Exception:
            log.exception("unhandled error streaming %s", scope["path"])  # the stream just ends; the log has why
        finally:
            await reply.chunks.aclose()
    # ---- end h6 ----

    async def _models(self, send: Send) -> None:
        await self._list_models(send, None)

    async def _list_models(self, send: Send, caller: Caller | None) -> None:
        """Chat, embedding and audio models; a non-admin key sees only ids it may use, no prices."""
        listing = self.service.list_models(caller)
        if self.audio is not None:  # voice bridge: audio models are listed with their kind
            audio = self.audio.service.list_models(int(self.service.started_at))
            if caller is not None and not caller.admin:
                audio = [{"id": m["id"], "object": "model", "created": m["created"], "owned_by": "wilton"}
                         for m in audio if caller.permits(str(m["id"]), _is_local(m))]
            listing["data"] += audio
        await _send_json(send, 200, orjson.dumps(listing))

    async def _healthz(self, send: Send) -> None:
        await _send_json(send, 200, b'{"status":"ok"}')

    async def _readyz(self, send: Send) -> None:
        ok, info = self.service.readiness()
        await _send_json(send, 200 if ok else 503, orjson.dumps(info))

    async def _metrics_route(self, send: Send) -> None:
        if self._metrics is None:
            await _send_error(send, 404, "metrics are not enabled", "invalid_request_error", None, "not_found")
            return
        body, ctype = self._metrics()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _openapi_route(self, send: Send) -> None:
        if self._openapi is None:
            await _send_error(send, 404, "no schema", "invalid_request_error", None, "not_found")
            return
        if self._openapi_cache is None:
            self._openapi_cache = orjson.dumps(self._openapi())
        await _send_json(send, 200, self._openapi_cache)
