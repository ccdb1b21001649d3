"""Users, tokens and login throttling for the coherence API, over the shared store.

- Passwords: argon2id (argon2-cffi). Unknown users are verified against a dummy hash so that
  "no such user" and "wrong password" take the same time.
- Access tokens live 15 minutes; refresh tokens rotate on every use, and presenting a refresh
  token that was already used revokes its whole family (and every access token of the family,
  which carries the family id).
- Signing keys carry a `kid`: the newest non-retired key signs, every non-retired key verifies.
- Throttling: per (username, client), after `max_failures` failures each further failure locks
  the pair for base × 2^(n - max_failures) seconds, capped; and per username across every
  client after `max_user_failures` failures, the same way (a spray from many addresses). The
  counter is taken atomically in the store BEFORE the password is checked (an upsert that
  returns the new count), so concurrent guesses cannot all read the same old count: at most
  `max_failures` guesses per pair (and `max_user_failures` per user) are ever verified before
  the lock. The per-user lock lets an attacker lock a user out for a while (capped at
  `lockout_max_s`); that is the price of not letting them guess from a thousand addresses.
- Hashing is expensive (argon2id: tens of ms of CPU and 64 MiB): the HTTP route admits at most
  `max_concurrent_hashes` logins at once and answers the rest 503 at once (see api/routes/auth.py).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wilton_core.coherence.tokens import (
    SigningKey,
    TokenError,
    decode_token,
    encode_token,
    make_claims,
    new_signing_key,
)

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from wilton_core.store.base import Store

__all__ = [
    "ALL_SCOPES",
    "AuthConfig",
    "AuthService",
    "InvalidCredentials",
    "InvalidScope",
    "LoginThrottled",
    "Principal",
    "TokenPair",
    "lockout_seconds",
]

ALL_SCOPES = ("phi:read", "phi:write")
MAX_USERNAME = 128
MAX_PASSWORD = 1024


class InvalidCredentials(Exception):
    pass


class InvalidScope(Exception):
    pass


class LoginThrottled(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many failed logins")
        self.retry_after_s = retry_after_s


@dataclass(slots=True, frozen=True)
class AuthConfig:
    issuer: str = "wilton-coherence"
    audience: str = "wilton-coherence-api"
    access_ttl_s: float = 15 * 60
    refresh_ttl_s: float = 7 * 24 * 3600
    max_failures: int = 5
    lockout_base_s: float = 30.0
    lockout_max_s: float = 3600.0
    key_max_age_s: float = 30 * 24 * 3600   # rotate the signing key after this
    leeway_s: float = 0.0
    max_user_failures: int = 10             # per username, whatever the client address
    # password checks running at once (HTTP route); argon2 is CPU and memory bound
    max_concurrent_hashes: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))


@dataclass(slots=True, frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    scope: str
    token_type: str = "bearer"


@dataclass(slots=True, frozen=True)
class Principal:
    username: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    family: str | None = None


def lockout_seconds(failures: int, max_failures: int, base_s: float, cap_s: float) -> float:
    """How long (username, client) is locked after its `failures`-th consecutive failure."""
    if failures < max_failures:
        return 0.0
    return min(cap_s, base_s * (2.0 ** min(failures - max_failures, 60)))


def _default_hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def _scopes(text: str) -> list[str]:
    return [s for s in text.split() if s]


class AuthService:
    """All auth decisions; every method takes `now` explicitly (defaulting to the clock)."""

    def __init__(
        self,
        store: Store,
        config: AuthConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.store = store
        self.config = config or AuthConfig()
        self.clock = clock
        self.hasher = hasher or _default_hasher()
        self._dummy_hash: str | None = None

    # -- users -------------------------------------------------------------------------------

    def has_user(self, username: str) -> bool:
        return self.store.query_one("SELECT 1 FROM coherence_users WHERE username = ?", (username,)) is not None

    def set_password(self, username: str, password: str, scopes: Iterable[str] = ALL_SCOPES,
                     now: float | None = None) -> None:
        if not password:
            raise ValueError("empty password")
        t = self.clock() if now is None else now
        h = self.hasher.hash(password)
        sc = " ".join(scopes)
        with self.store.transaction():
            if self.has_user(username):
                self.store.execute(
                    "UPDATE coherence_users SET password_hash = ?, scopes = ?, updated_at = ? WHERE username = ?",
                    (h, sc, t, username),
                )
            else:
                self.store.execute(
                    "INSERT INTO coherence_users (username, password_hash, scopes, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)", (username, h, sc, t, t),
                )

    def password_matches(self, username: str, password: str) -> bool:
        row = self.store.query_one("SELECT password_hash FROM coherence_users WHERE username = ?", (username,))
        return row is not None and self._verify(str(row[0]), password)

    def _verify(self, stored_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            return bool(self.hasher.verify(stored_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- signing keys ------------------------------------------------------------------------

    def keys(self) -> dict[str, SigningKey]:
        rows = self.store.query("SELECT kid, secret, created_at, retired_at FROM coherence_signing_keys")
        return {
            str(r[0]): SigningKey(str(r[0]), bytes.fromhex(str(r[1])), float(r[2]),
                                  None if r[3] is None else float(r[3]))
            for r in rows
        }

    def active_key(self, now: float | None = None) -> SigningKey:
        t = self.clock() if now is None else now
        live = [k for k in self.keys().values() if k.verifies_at(t)]
        if not live:
            return self.rotate_key(t)
        return max(live, key=lambda k: (k.created_at, k.kid))

    def rotate_key(self, now: float | None = None) -> SigningKey:
        """Add a new signing key; older keys keep verifying until retired."""
        t = self.clock() if now is None else now
        key = new_signing_key(t)
        self.store.execute(
            "INSERT INTO coherence_signing_keys (kid, secret, created_at, retired_at) VALUES (?, ?, ?, NULL)",
            (key.kid, key.secret.hex(), t),
        )
        return key

    def retire_key(self, kid: str, now: float | None = None) -> None:
        t = self.clock() if now is None else now
        self.store.execute("UPDATE coherence_signing_keys SET retired_at = ? WHERE kid = ?", (t, kid))

    def maintain_keys(self, now: float | None = None) -> None:
        """Rotate an old active key; retire keys no token signed by them can still need."""
        t = self.clock() if now is None else now
        active = self.active_key(t)
        if t - active.created_at >= self.config.key_max_age_s:
            active = self.rotate_key(t)
        for k in self.keys().values():
            # A refresh token lives refresh_ttl_s: a key that stopped signing longer ago is unused.
            if (k.kid != active.kid and k.retired_at is None
                    and t - k.created_at >= self.config.key_max_age_s + self.config.refresh_ttl_s):
                self.retire_key(k.kid, t)

    # -- login, refresh, verify ---------------------------------------------------------------

    def login(self, username: str, password: str, client: str, requested_scopes: str = "",
              now: float | None = None) -> TokenPair:
        t = self.clock() if now is None else now
        username = username[:MAX_USERNAME]
        cfg = self.config
        # The pair first: a throttled pair must not spend the user's allowance.
        slots = [(f"{username}|{client[:128]}", cfg.max_failures), (f"user:{username}", cfg.max_user_failures)]
        taken: list[tuple[str, int, int]] = []
        for tkey, limit in slots:
            failures = self._take_attempt(tkey, limit, t)
            taken.append((tkey, limit, failures))
        user = self.store.query_one(
            "SELECT password_hash, scopes FROM coherence_users WHERE username = ?", (username,)
        )
        stored = str(user[0]) if user is not None else self._dummy()
        ok = self._verify(stored, password[:MAX_PASSWORD]) and user is not None
        if not ok:
            for tkey, limit, failures in taken:
                lock = lockout_seconds(failures, limit, cfg.lockout_base_s, cfg.lockout_max_s)
                if lock:
                    self.store.execute(
                        "UPDATE coherence_login_failures SET locked_until = ? WHERE throttle_key = ?"
                        " AND locked_until < ?", (t + lock, tkey, t + lock))
            raise InvalidCredentials()
        assert user is not None
        for tkey, _, _ in taken:
            self.store.execute("DELETE FROM coherence_login_failures WHERE throttle_key = ?", (tkey,))
        if self.hasher.check_needs_rehash(stored):
            self.set_password(username, password, _scopes(str(user[1])), t)
        granted = self._grant(_scopes(str(user[1])), requested_scopes)
        return self._issue(username, granted, secrets.token_hex(16), t)

    def _take_attempt(self, tkey: str, limit: int, now: float) -> int:
        """Count one attempt for `tkey` atomically, before the password is checked; its number.

        Raises LoginThrottled when the key is locked, or when this attempt is beyond `limit` and
        another attempt already claimed the one guess allowed after the last lock expired.
        """
        row = self.store.query_one(
            "SELECT locked_until FROM coherence_login_failures WHERE throttle_key = ?", (tkey,))
        if row is not None and float(row[0]) > now:
            raise LoginThrottled(float(row[0]) - now)
        with self.store.transaction():
            counted = self.store.query_one(
                "INSERT INTO coherence_login_failures (throttle_key, failures, last_failure, locked_until)"
                " VALUES (?, 1, ?, 0) ON CONFLICT (throttle_key) DO UPDATE SET"
                " failures = coherence_login_failures.failures + 1, last_failure = excluded.last_failure"
                " RETURNING failures, locked_until", (tkey, now))
        assert counted is not None
        failures, locked = int(counted[0]), float(counted[1])
        if locked > now:
            raise LoginThrottled(locked - now)
        if failures <= limit:
            return failures
        lock = lockout_seconds(failures, limit, self.config.lockout_base_s, self.config.lockout_max_s)
        if locked == 0.0:
            # Past the limit while earlier attempts are still being checked (their failure sets the
            # lock): lock now, so that no attempt gets in before them.
            self.store.execute("UPDATE coherence_login_failures SET locked_until = ? WHERE throttle_key = ?"
                               " AND locked_until = 0", (now + lock, tkey))
            raise LoginThrottled(lock)
        # Past the limit with the lock expired: one guess per lock period. Claim it atomically by
        # moving the lock forward; concurrent attempts that lose the claim are throttled.
        won = self.store.execute(
            "UPDATE coherence_login_failures SET locked_until = ? WHERE throttle_key = ? AND locked_until <= ?",
            (now + lock, tkey, now))
        if won != 1:
            raise LoginThrottled(lock)
        return failures

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        return self._dummy_hash

    @staticmethod
    def _grant(allowed: list[str], requested: str) -> list[str]:
        req = _scopes(requested)
        if not req:
            return [s for s in ALL_SCOPES if s in allowed]
        unknown = [s for s in req if s not in ALL_SCOPES]
        if unknown:
            raise InvalidScope("unknown scope")
        granted = [s for s in ALL_SCOPES if s in req and s in allowed]
        if not granted:
            raise InvalidScope("no requested scope is allowed for this user")
        return granted

    def _issue(self, username: str, scopes: list[str], family: str, now: float) -> TokenPair:
        cfg = self.config
        key = self.active_key(now)
        access = make_claims(sub=username, scopes=scopes, typ="access", now=now, ttl_s=cfg.access_ttl_s,
                             issuer=cfg.issuer, audience=cfg.audience, jti=secrets.token_hex(16),
                             family=family)
        rjti = secrets.token_hex(16)
        refresh = make_claims(sub=username, scopes=scopes, typ="refresh", now=now, ttl_s=cfg.refresh_ttl_s,
                              issuer=cfg.issuer, audience=cfg.audience, jti=rjti, family=family)
        self.store.execute(
            "INSERT INTO coherence_refresh_tokens (jti, family, username, scopes, issued_at, expires_at,"
            " used_at, revoked) VALUES (?, ?, ?, ?, ?, ?, NULL, 0)",
            (rjti, family, username, " ".join(scopes), now, refresh["exp"]),
        )
        return TokenPair(encode_token(access, key), encode_token(refresh, key), int(cfg.access_ttl_s),
                         int(cfg.refresh_ttl_s), " ".join(scopes))

    def _decode(self, token: str, typ: str, now: float) -> dict[str, Any]:
        cfg = self.config
        return decode_token(token, self.keys(), now, issuer=cfg.issuer, audience=cfg.audience, typ=typ,
                            leeway_s=cfg.leeway_s)

    def refresh(self, token: str, now: float | None = None) -> TokenPair:
        """Rotate: the presented refresh token is spent; a spent one revokes its family."""
        t = self.clock() if now is None else now
        claims = self._decode(token, "refresh", t)
        jti = str(claims["jti"])
        row = self.store.query_one(
            "SELECT family, username, scopes FROM coherence_refresh_tokens WHERE jti = ?", (jti,)
        )
        if row is None:
            raise TokenError("unknown_refresh_token")
        family, username, scopes = str(row[0]), str(row[1]), _scopes(str(row[2]))
        # The conditional UPDATE is the atomic "spend": of two concurrent uses only one wins.
        won = self.store.execute(
            "UPDATE coherence_refresh_tokens SET used_at = ? WHERE jti = ? AND used_at IS NULL AND revoked = 0",
            (t, jti),
        )
        if won != 1:
            self.revoke_family(family)
            raise TokenError("refresh_reuse")
        user = self.store.query_one("SELECT scopes FROM coherence_users WHERE username = ?", (username,))
        if user is None:
            raise TokenError("unknown_user")
        allowed = set(_scopes(str(user[0])))
        kept = [s for s in scopes if s in allowed]  # never more than the original grant
        if not kept:
            raise TokenError("no_scope")
        return self._issue(username, kept, family, t)

    def revoke_family(self, family: str) -> None:
        self.store.execute("UPDATE coherence_refresh_tokens SET revoked = 1 WHERE family = ?", (family,))

    def authenticate(self, token: str, now: float | None = None) -> Principal:
        t = self.clock() if now is None else now
        claims = self._decode(token, "access", t)
        fam = claims.get("fam")
        if isinstance(fam, str) and self.store.query_one(
            "SELECT 1 FROM coherence_refresh_tokens WHERE family = ? AND revoked = 1", (fam,)
        ) is not None:
            raise TokenError("revoked")
        username = str(claims["sub"])
        if not self.has_user(username):
            raise TokenError("unknown_user")
        return Principal(username, frozenset(_scopes(str(claims.get("scope", "")))),
                         fam if isinstance(fam, str) else None)

    def purge(self, now: float | None = None) -> None:
        """Drop expired refresh rows and stale throttle rows so the tables stay small."""
        t = self.clock() if now is None else now
        self.store.execute("DELETE FROM coherence_refresh_tokens WHERE expires_at < ?", (t,))
        self.store.execute(
            "DELETE FROM coherence_login_failures WHERE locked_until < ? AND last_failure < ?",
            (t, t - max(self.config.lockout_max_s, 86400.0)),
        )

