"""The gateway's HTTP face: a raw ASGI app (no framework on the request path).

A framework would cost more per request than everything else the router does; the surface is
small (five routes), so routing is a dict lookup. The OpenAPI schema is still served, built from
pydantic models in openapi.py, so clients and fuzzers can read it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from wilton_core.audio.service import AudioService
from wilton_core.errors import NoHealthyModelError, RequestError
from wilton_core.router.audio_routes import AudioRoutes
from wilton_core.router.service import RouterService
from wilton_core.router.wire import error_body, validate_chat_request

__all__ = ["RouterApp"]

log = logging.getLogger("wilton.router")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

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


def no_model_body(e: NoHealthyModelError) -> bytes:
    """429 `rate_limit_exceeded` when only rate limits stood in the way, else 503 `no_healthy_model`."""
    type_, code = ("rate_limit_error", "rate_limit_exceeded") if e.rate_limited else (
        "service_unavailable", "no_healthy_model")
    return orjson.dumps({"error": {"message": e.message, "type": type_, "param": None, "code": code,
                                   "tried": [{"model": m, "error": k} for m, k in e.tried]}})


async def _send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, status: int, message: str, type_: str, param: str | None = None,
                      code: str | None = None) -> None:
    await _send_json(send, status, error_body(message, type_, param, code))


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


class RouterApp:
    def __init__(self, service: RouterService, *, metrics: Callable[[], tuple[bytes, str]] | None = None,
                 openapi: Callable[[], dict[str, Any]] | None = None, audio: AudioRoutes | None = None) -> None:
        self.service = service
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
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        if path in ("/v1/chat/completions", "/chat/completions"):
            if method != "POST":
                await _send_error(send, 405, f"Method {method} not allowed on {path}; use POST.",
                                  "invalid_request_error", None, "method_not_allowed")
                return
            await self._chat(scope, receive, send)
            return
        # --- voice bridge (issue 19): handlers in audio_routes.py
        if self.audio is not None and path in self.audio.routes:
            if method != "POST":
                await _send_error(send, 405, f"Method {method} not allowed on {path}; use POST.",
                                  "invalid_request_error", None, "method_not_allowed")
                return
            await self.audio.handle(scope, receive, send)
            return
        # --- end voice bridge
        handler = self._get.get(path)
        if handler is None:
            await _send_error(send, 404, f"Unknown path {path}.", "invalid_request_error", None, "not_found")
            return
        if method not in ("GET", "HEAD"):
            await _send_error(send, 405, f"Method {method} not allowed on {path}; use GET.",
                              "invalid_request_error", None, "method_not_allowed")
            return
        await handler(send)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        svc = self.service
        try:
            raw = await _read_body(scope, receive, svc.routing.max_body_bytes)
        except _TooLarge:
            await _send_error(send, 413, f"Request body exceeds the limit of {svc.routing.max_body_bytes} bytes.",
                              "invalid_request_error", None, "request_too_large")
            return
        except ConnectionResetError:
            return
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            await _send_error(send, 400, f"The request body is not valid JSON: {e.msg} at position {e.pos}.",
                              "invalid_request_error", None, "invalid_json")
            return
        try:
            validate_chat_request(body)
            decision = svc.decide(body, started)
            if body.get("stream"):
                out = await svc.stream(body, decision)
                await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + out.headers})
                async for chunk in out.chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            res = await svc.complete(body, decision)
            await _send_json(send, 200, res.body, res.headers)
        except RequestError as e:
            await _send_error(send, e.status, e.message, e.type, e.param, e.code)
        except NoHealthyModelError as e:
            await _send_json(send, e.status, no_model_body(e), retry_after_headers(e.retry_after))
        except Exception:
            # a bug must not leak a traceback to the client; the log keeps it for us
            log.exception("unhandled error on /v1/chat/completions")
            with contextlib.suppress(Exception):
                await _send_error(send, 500, "Internal error in the router; see its log.", "server_error",
                                  None, "internal_error")

    async def _models(self, send: Send) -> None:
        listing = self.service.list_models()
        if self.audio is not None:  # voice bridge: audio models are listed with their kind
            listing["data"] += self.audio.service.list_models(int(self.service.started_at))
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
