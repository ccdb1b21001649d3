"""POST /auth/token (OAuth2 password form) and POST /auth/refresh (rotating refresh tokens)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from wilton_core.coherence.api.deps import ServiceDep, client_id
from wilton_core.coherence.auth import InvalidCredentials, InvalidScope, LoginThrottled, TokenPair
from wilton_core.coherence.tokens import MAX_TOKEN_CHARS, TokenError

router = APIRouter(prefix="/auth", tags=["auth"])
log = logging.getLogger("wilton.coherence.auth")


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_expires_in: int
    scope: str

    @classmethod
    def of(cls, pair: TokenPair) -> TokenResponse:
        return cls(access_token=pair.access_token, refresh_token=pair.refresh_token,
                   token_type=pair.token_type, expires_in=pair.expires_in,
                   refresh_expires_in=pair.refresh_expires_in, scope=pair.scope)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS)


@router.post("/token", response_model=TokenResponse)
async def token(
    request: Request,
    service: ServiceDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    client: Annotated[str, Depends(client_id)],
) -> TokenResponse:
    slots: asyncio.Semaphore = request.app.state.login_slots  # set by create_app
    if slots.locked():
        # A flood of logins must not queue argon2 work ahead of the API: refuse the excess at once.
        raise HTTPException(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="too many logins in progress; try again shortly",
                            headers={"Retry-After": "1"})
    try:
        async with slots:
            # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
            pair = await run_in_threadpool(service.auth.login, form.username, form.password, client,
                                           " ".join(form.scopes))
    except LoginThrottled as e:
        log.warning("login throttled for a (user, client) pair")
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed logins; try again later",
            headers={"Retry-After": str(max(1, int(e.retry_after_s + 0.999)))},
        ) from None
    except InvalidCredentials:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None
    except InvalidScope as e:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail=f"invalid_scope: {e}") from None
    return TokenResponse.of(pair)


@router.post("/refresh", response_model=TokenResponse)
def refresh(service: ServiceDep, body: RefreshRequest) -> TokenResponse:
    try:
        pair = service.auth.refresh(body.refresh_token)
    except TokenError as e:
        log.info("rejected refresh token: %s", e.reason)
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="invalid, expired or reused refresh token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    return TokenResponse.of(pair)
