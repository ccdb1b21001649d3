"""The router's key admin routes, behind the master key (docs/access.md: why here).

    GET  /admin/keys                     every key, spend against budget (all replicas)
    POST /admin/keys                     {"name", "budget_usd", "budget_period", "rpm", "tpm",
                                          "models", "local_only", "expires"} → 201 {"id", "name", "key"}
    GET  /admin/keys/{ref}               one key (ref: id or name)
    POST /admin/keys/{ref}/rotate        {"grace": "1h"} → {"id", "name", "key"}
    POST /admin/keys/{ref}/revoke        → the key, revoked

Same repository as `wiltonctl keys`; every store call runs in a thread. A change is applied on
this replica at once and on the others within their refresh interval. Errors are OpenAI-shaped.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson

from wilton_core.access.keys import KeyAdminError, KeySpec, parse_duration, parse_models
from wilton_core.router.asgi import Receive, Scope, Send
from wilton_core.router.wire import error_body

if TYPE_CHECKING:
    from wilton_core.access.gate import Gate

__all__ = ["handle_admin"]


_MAX_BODY = 16 * 1024
_CREATE_FIELDS = {"name", "budget_usd", "budget_period", "rpm", "tpm", "models", "local_only", "expires"}


class _Fail(Exception):
    def __init__(self, status: int, message: str, code: str, type_: str = "invalid_request_error",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.type, self.param = status, message, code, type_, param


async def _send(send: Send, status: int, payload: Any) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _json(receive: Receive) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _Fail(400, "client disconnected", "disconnected")
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            raise _Fail(413, f"Request body exceeds {_MAX_BODY} bytes.", "request_too_large")
        chunks.append(chunk)
        if not msg.get("more_body"):
            break
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Fail(400, "The request body is not valid JSON.", "invalid_json") from None
    if not isinstance(body, dict):
        raise _Fail(400, "The request body must be a JSON object.", "invalid_type")
    return body


def _typed(body: dict[str, Any], name: str, kinds: tuple[type, ...]) -> Any:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) and bool not in kinds:
        raise _Fail(400, f"'{name}' has the wrong type.", "invalid_type", param=name)
    if not isinstance(v, kinds):
        raise _Fail(400, f"'{name}' has the wrong type.", "invalid_type", param=name)
    return v


def _spec(body: dict[str, Any]) -> KeySpec:
    unknown = set(body) - _CREATE_FIELDS
    if unknown:
        raise _Fail(400, f"Unknown field(s): {', '.join(sorted(unknown))}.", "unknown_parameter")
    name = _typed(body, "name", (str,))
    if not name:
        raise _Fail(400, "'name' is required.", "missing_required_parameter", param="name")
    models = _typed(body, "models", (str, list))
    if isinstance(models, list) and not all(isinstance(m, str) for m in models):
        raise _Fail(400, "'models' must be a string or an array of strings.", "invalid_type", param="models")
    expires = _typed(body, "expires", (str,))
    budget = _typed(body, "budget_usd", (int, float))
    return KeySpec(
        name=name, budget_usd=None if budget is None else float(budget),
        budget_period=_typed(body, "budget_period", (str,)) or "total", rpm=_typed(body, "rpm", (int,)),
        tpm=_typed(body, "tpm", (int,)), models=parse_models(models),
        local_only=bool(_typed(body, "local_only", (bool,))),
        expires_in_s=parse_duration(expires) if expires else None,
    )


async def handle_admin(gate: Gate, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve /admin/keys*; only the master key gets past the first check."""
    try:
        who = gate.identify(scope.get("headers", ()))
        from wilton_core.access.gate import Refusal

        if isinstance(who, Refusal):
            await _send(send, who.status, who.body())
            return
        if not who.admin or gate.repo is None or not gate.has_master_key:
            raise _Fail(403, "The key admin routes need the master key (WILTON_MASTER_KEY).", "admin_only",
                        "permission_error")
        await _route(gate, scope, receive, send)
    except _Fail as f:
        await _send(send, f.status, error_body(f.message, f.type, f.param, f.code))
    except KeyAdminError as e:
        status = 404 if str(e).startswith("no key") else 400
        await _send(send, status, error_body(str(e), "invalid_request_error", None,
                                             "key_not_found" if status == 404 else "invalid_key_request"))


async def _route(gate: Gate, scope: Scope, receive: Receive, send: Send) -> None:
    assert gate.repo is not None
    repo = gate.repo
    parts = [p for p in scope["path"].split("/") if p]  # ["admin", "keys", ref?, action?]
    method = scope["method"]
    if parts[:2] != ["admin", "keys"] or len(parts) > 4:
        raise _Fail(404, f"Unknown path {scope['path'][:200]}.", "not_found")
    now = time.time()
    if len(parts) == 2 and method == "GET":
        keys = await asyncio.to_thread(repo.all)
        usage = await asyncio.to_thread(repo.usage, keys, now)
        await _send(send, 200, {"object": "list", "refreshed_at": gate.refreshed_at, "data": [
            {**k.public(now), "spent_usd": usage[k.id].period_cost_usd, "spent_total_usd": usage[k.id].total_cost_usd,
             "requests": usage[k.id].requests, "refused": usage[k.id].refused} for k in keys]})
        return
    if len(parts) == 2 and method == "POST":
        spec = _spec(await _json(receive))
        key, secret = await asyncio.to_thread(repo.create, spec)
        await gate.refresh()
        await _send(send, 201, {"id": key.id, "name": key.name, "key": secret})
        return
    ref = parts[2] if len(parts) > 2 else ""
    action = parts[3] if len(parts) == 4 else ""
    if not action and method == "GET":
        key = await asyncio.to_thread(repo.get, ref)
        await _send(send, 200, key.public(now))
        return
    if action == "rotate" and method == "POST":
        body = await _json(receive)
        grace = _typed(body, "grace", (str,))
        key, secret = await asyncio.to_thread(repo.rotate, ref, parse_duration(grace) if grace else 0.0)
        await gate.refresh()
        await _send(send, 200, {"id": key.id, "name": key.name, "key": secret})
        return
    if action == "revoke" and method == "POST":
        key = await asyncio.to_thread(repo.revoke, ref)
        await gate.refresh()
        await _send(send, 200, key.public(time.time()))
        return
    raise _Fail(405 if action in ("", "rotate", "revoke") else 404,
                f"{method} {scope['path'][:200]} is not supported.", "method_not_allowed")
