"""The coherence daemon's FastAPI app: routes per area, the service on `app.state`."""

from __future__ import annotations

from fastapi import FastAPI

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
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(phi.router)
    return app
