"""FastAPI dependencies of the coherence API, with `Annotated` aliases used by the routes.

Every route that is not on the allow-list (/healthz, /auth/*, the OpenAPI docs) takes a
principal alias, so auth is on by default: a route without one is visibly public.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from wilton_core.coherence.auth import Principal
from wilton_core.coherence.service import CoherenceService
from wilton_core.coherence.tokens import TokenError

__all__ = ["PhiReader", "PhiWriter", "ServiceDep", "client_id", "current_principal", "get_service"]

log = logging.getLogger("wilton.coherence.auth")

oauth2 = OAuth2PasswordBearer(
    tokenUrl="/auth/token",
    scopes={"phi:read": "read the phi control state", "phi:write": "change the phi target, rebalance"},
    auto_error=False,
)


def get_service(request: Request) -> CoherenceService:
    service: CoherenceService = request.app.state.service
    return service


ServiceDep = Annotated[CoherenceService, Depends(get_service)]


def client_id(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthorized(scopes: SecurityScopes) -> HTTPException:
    scope = f' scope="{scopes.scope_str}"' if scopes.scopes else ""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="invalid or expired access token",
        headers={"WWW-Authenticate": f'Bearer error="invalid_token"{scope}'},
    )


def current_principal(
    security_scopes: SecurityScopes,
    service: ServiceDep,
    token: Annotated[str | None, Depends(oauth2)],
) -> Principal:
    if not token:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = service.auth.authenticate(token)
    except TokenError as e:
        log.info("rejected access token: %s", e.reason)  # the reason code, never the token
        raise _unauthorized(security_scopes) from None
    missing = [s for s in security_scopes.scopes if s not in principal.scopes]
    if missing:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"missing scope: {' '.join(missing)}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope" scope="{security_scopes.scope_str}"'},
        )
    return principal


PhiReader = Annotated[Principal, Security(current_principal, scopes=["phi:read"])]
PhiWriter = Annotated[Principal, Security(current_principal, scopes=["phi:write"])]
