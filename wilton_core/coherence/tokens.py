"""JWT encode/decode as pure functions of (claims, key, now). HS256 only, `kid` required.

The algorithm is pinned before anything else is looked at: a token whose header names any other
algorithm (`none`, RS256, ...) is rejected without trying a key, which closes both the alg-none
and the HS/RS key-confusion attacks. Time claims are checked here against the caller's `now`
(PyJWT would read the wall clock), so expiry is testable without sleeping.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALGORITHM",
    "MAX_TOKEN_CHARS",
    "SigningKey",
    "TokenError",
    "decode_token",
    "encode_token",
    "make_claims",
    "new_signing_key",
]

ALGORITHM = "HS256"
MAX_TOKEN_CHARS = 4096
REQUIRED = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ")


class TokenError(Exception):
    """The token is not acceptable; `reason` is a short code safe to log (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True, frozen=True)
class SigningKey:
    kid: str
    secret: bytes
    created_at: float
    retired_at: float | None = None

    def verifies_at(self, now: float) -> bool:
        return self.retired_at is None or now < self.retired_at

    def __repr__(self) -> str:  # the secret must never reach a log line through a repr
        return f"SigningKey(kid={self.kid!r}, created_at={self.created_at}, retired_at={self.retired_at})"


def new_signing_key(now: float) -> SigningKey:
    return SigningKey(kid=secrets.token_hex(8), secret=secrets.token_bytes(32), created_at=now)


def make_claims(
    *, sub: str, scopes: list[str] | tuple[str, ...], typ: str, now: float, ttl_s: float,
    issuer: str, audience: str, jti: str, family: str | None = None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": sub, "scope": " ".join(scopes), "typ": typ, "iss": issuer, "aud": audience,
        "iat": int(now), "nbf": int(now), "exp": int(now + ttl_s), "jti": jti,
    }
    if family is not None:
        claims["fam"] = family
    return claims


def encode_token(claims: Mapping[str, Any], key: SigningKey) -> str:
    import jwt

    return jwt.encode(dict(claims), key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})


def decode_token(
    token: str, keys: Mapping[str, SigningKey], now: float, *, issuer: str, audience: str,
    typ: str, leeway_s: float = 0.0,
) -> dict[str, Any]:
    """Verified claims, or TokenError. `keys` maps kid → key (retired keys may be included)."""
    import jwt

    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("malformed") from None
    if header.get("alg") != ALGORITHM:
        raise TokenError("bad_algorithm")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None or not key.verifies_at(now):
        raise TokenError("unknown_kid")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key.secret, algorithms=[ALGORITHM], audience=audience, issuer=issuer,
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                     "require": list(REQUIRED)},
        )
    except jwt.InvalidAudienceError:
        raise TokenError("bad_audience") from None
    except jwt.InvalidIssuerError:
        raise TokenError("bad_issuer") from None
    except jwt.InvalidSignatureError:
        raise TokenError("bad_signature") from None
    except jwt.PyJWTError:
        raise TokenError("invalid") from None
    times = [claims.get(k) for k in ("exp", "nbf", "iat")]
    if not all(isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) for t in times):
        raise TokenError("invalid")
    exp, nbf, iat = (float(t) for t in times)  # type: ignore[arg-type]
    if now >= exp + leeway_s:
        raise TokenError("expired")
    if now + leeway_s < nbf or now + leeway_s < iat:
        raise TokenError("not_yet_valid")
    if claims.get("typ") != typ:
        raise TokenError("wrong_type")
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope", ""), str):
        raise TokenError("invalid")
    return claims
