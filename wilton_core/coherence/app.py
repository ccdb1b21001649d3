"""The coherence daemon's FastAPI app: routes per area, the service on `app.state`."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from wilton_core.coherence.api.routes import auth, health, phi
from wilton_core.coherence.service import CoherenceService

__all__ = ["create_app"]


def create_app(service: CoherenceService) -> FastAPI:
    """The API over an already started (or about to be started) service; no side effects."""
    app = FastAPI(
        title="WiltonOS coherence daemon",
        description="Holds phi (the local share of routed requests) at its target; JWT-protected.",
        version="0.1.0",
    )
    app.state.service = service
    # the cap on password checks running at once (api/routes/auth.py): a flood gets 503s, not a queue
    app.state.login_slots = asyncio.Semaphore(service.options.auth.max_concurrent_hashes)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(phi.router)
    return app


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's default body echoes the rejected input: that can be a password from the login
    # form, and a NaN/inf it cannot even serialise (a 500 instead of a 422). Location and reason
    # are enough to fix a request.
    detail = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})
