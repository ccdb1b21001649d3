"""Client keys of the gateway: the typed record, pure parsing, and the store repository.

A key is `sk-wilton-` followed by 43 url-safe characters (32 random bytes). The store keeps its
SHA-256, never the key: with 256 bits of entropy there is no dictionary to slow down, so a
password hash (argon2, bcrypt) would only add latency on every request. The first characters
(`prefix`, not secret) identify a key in listings.

Budgets are charged from the ledger's cost per key and period; the per-day totals are kept by a
trigger on the ledger (migration 0011), so reading a key's spend costs a few rows.
"""

from __future__ import annotations

import calendar
import fnmatch
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wilton_core.errors import WiltonError

if TYPE_CHECKING:
    from wilton_core.store.base import Store

__all__ = [
    "BUDGET_PERIODS",
    "KEY_PREFIX",
    "ApiKey",
    "KeyAdminError",
    "KeyRepo",
    "KeySpec",
    "KeyUsage",
    "hash_key",
    "looks_like_key",
    "model_allowed",
    "new_key",
    "parse_duration",
    "parse_models",
    "period_start",
]

KEY_PREFIX = "sk-wilton-"
BUDGET_PERIODS = ("day", "week", "month", "total")
_SHOWN = len(KEY_PREFIX) + 6          # characters of the key shown in listings
_MAX_KEY_CHARS = 256                  # anything longer is not one of ours: reject before hashing
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GLOB = re.compile(r"^[A-Za-z0-9._:/*?@+\-\[\]]{1,128}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


class KeyAdminError(WiltonError):
    """A key operation that cannot be done (bad spec, unknown key, duplicate name)."""


@dataclass(slots=True, frozen=True)
class KeySpec:
    """What `wiltonctl keys create` asks for, validated."""

    name: str
    budget_usd: float | None = None
    budget_period: str = "total"
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] = ()      # allow-list globs; empty = every model
    local_only: bool = False
    expires_in_s: float | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise KeyAdminError(f"key name {self.name!r} is invalid: 1-64 characters of letters, digits, '.', '_', '-'"
                            ", starting with a letter or digit")
        if self.budget_usd is not None and not (self.budget_usd >= 0 and self.budget_usd < 1e9):
            raise KeyAdminError("--budget-usd must be a number between 0 and 1e9")
        if self.budget_period not in BUDGET_PERIODS:
            raise KeyAdminError(f"--budget-period must be one of {', '.join(BUDGET_PERIODS)}")
        for what, v in (("--rpm", self.rpm), ("--tpm", self.tpm)):
            if v is not None and not 1 <= v <= 10**9:
                raise KeyAdminError(f"{what} must be a positive integer")
        if self.expires_in_s is not None and self.expires_in_s <= 0:
            raise KeyAdminError("--expires must be a positive duration")


@dataclass(slots=True, frozen=True)
class ApiKey:
    id: str
    name: str
    key_hash: str
    prefix: str
    created_at: float
    updated_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    budget_usd: float | None = None
    budget_period: str = "total"
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] = ()
    local_only: bool = False
    previous_hash: str | None = None
    previous_until: float | None = None

    def active(self, now: float) -> bool:
        return (self.revoked_at is None or self.revoked_at > now) and (
            self.expires_at is None or self.expires_at > now)

    def state(self, now: float) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def allows(self, model_id: str) -> bool:
        return model_allowed(self.models, model_id)

    def public(self, now: float) -> dict[str, Any]:
        """The key's settings as JSON for listings (no hash, no secret)."""
        return {
            "id": self.id, "name": self.name, "prefix": self.prefix, "state": self.state(now),
            "created_at": self.created_at, "expires_at": self.expires_at, "revoked_at": self.revoked_at,
            "budget_usd": self.budget_usd, "budget_period": self.budget_period, "rpm": self.rpm,
            "tpm": self.tpm, "models": list(self.models), "local_only": self.local_only,
        }


# ---- pure helpers ---------------------------------------------------------------------------


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX) and len(text) <= _MAX_KEY_CHARS


def new_key(token: Callable[[int], str] = secrets.token_urlsafe) -> tuple[str, str]:
    """(key id, key). The id is not secret; the key is shown once."""
    return f"key_{secrets.token_hex(6)}", KEY_PREFIX + token(32)


def parse_duration(text: str) -> float:
    """'30d' → seconds. Units s, m, h, d, w; a bare number is seconds."""
    m = _DURATION.match(text or "")
    if m is None:
        raise KeyAdminError(f"duration {text!r} is invalid: use a number and a unit, e.g. 45m, 12h, 30d, 2w")
    value = float(m[1]) * _UNIT_S[m[2]]
    if value <= 0 or value > 100 * 365 * 86400:
        raise KeyAdminError(f"duration {text!r} is out of range (more than 0, at most 100 years)")
    return value


def parse_models(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """'local-*,gpt-4o' → ('local-*', 'gpt-4o'). Empty means every model."""
    if text is None:
        return ()
    parts = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for p in (s.strip() for s in parts):
        if not p:
            continue
        if not _GLOB.match(p):
            raise KeyAdminError(f"model pattern {p!r} is invalid: model ids and globs (* ?) only, up to 128 chars")
        if p not in out:
            out.append(p)
    return () if "*" in out else tuple(out)


def model_allowed(patterns: Sequence[str], model_id: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(model_id, p) for p in patterns)


def period_start(period: str, now: float) -> float:
    """Start (epoch s, UTC) of the budget period that contains `now`."""
    if period == "total":
        return 0.0
    day = int(now // 86400) * 86400
    if period == "day":
        return float(day)
    if period == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        return float(day - ((day // 86400 + 3) % 7) * 86400)
    if period == "month":
        t = time.gmtime(now)
        return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))
    raise KeyAdminError(f"unknown budget period {period!r}")


# ---- store ----------------------------------------------------------------------------------

_COLUMNS = ("id", "name", "key_hash", "prefix", "created_at", "updated_at", "expires_at", "revoked_at",
            "budget_usd", "budget_period", "rpm", "tpm", "models", "local_only", "previous_hash",
            "previous_until")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM api_keys"


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _row(r: Sequence[Any]) -> ApiKey:
    return ApiKey(
        id=str(r[0]), name=str(r[1]), key_hash=str(r[2]), prefix=str(r[3]), created_at=float(r[4]),
        updated_at=float(r[5]), expires_at=_opt_float(r[6]), revoked_at=_opt_float(r[7]),
        budget_usd=_opt_float(r[8]), budget_period=str(r[9]), rpm=_opt_int(r[10]), tpm=_opt_int(r[11]),
        models=tuple(m for m in str(r[12] or "").split(",") if m), local_only=bool(r[13]),
        previous_hash=None if r[14] is None else str(r[14]), previous_until=_opt_float(r[15]),
    )


@dataclass(slots=True, frozen=True)
class KeyUsage:
    """A key's totals from the ledger (all replicas): in its budget period and since it exists."""

    period_cost_usd: float = 0.0
    total_cost_usd: float = 0.0
    requests: int = 0
    refused: int = 0
    tokens: int = 0
    local_only: int = 0


@dataclass(slots=True)
class KeyRepo:
    """Keys in the shared store. Synchronous: callers run it off the event loop."""

    store: Store
    clock: Callable[[], float] = field(default=time.time)

    def create(self, spec: KeySpec, now: float | None = None) -> tuple[ApiKey, str]:
        t = self.clock() if now is None else now
        if self.find(spec.name) is not None:
            raise KeyAdminError(f"a key named {spec.name!r} exists already (rotate or revoke it)")
        kid, secret = new_key()
        key = ApiKey(
            id=kid, name=spec.name, key_hash=hash_key(secret), prefix=secret[:_SHOWN], created_at=t,
            updated_at=t, expires_at=t + spec.expires_in_s if spec.expires_in_s else None,
            budget_usd=spec.budget_usd, budget_period=spec.budget_period, rpm=spec.rpm, tpm=spec.tpm,
            models=spec.models, local_only=spec.local_only,
        )
        self.store.execute(
            f"INSERT INTO api_keys ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
            (key.id, key.name, key.key_hash, key.prefix, key.created_at, key.updated_at, key.expires_at,
             None, key.budget_usd, key.budget_period, key.rpm, key.tpm, ",".join(key.models),
             int(key.local_only), None, None),
        )
        return key, secret

    def all(self) -> list[ApiKey]:
        return [_row(r) for r in self.store.query(_SELECT + " ORDER BY name")]

    def find(self, ref: str) -> ApiKey | None:
        """A key by id, name or shown prefix."""
        r = self.store.query_one(_SELECT + " WHERE id = ? OR name = ?", (ref, ref))
        if r is None and ref.startswith(KEY_PREFIX):
            rows = self.store.query(_SELECT + " WHERE prefix = ?", (ref[:_SHOWN],))
            r = rows[0] if len(rows) == 1 else None
        return None if r is None else _row(r)

    def get(self, ref: str) -> ApiKey:
        key = self.find(ref)
        if key is None:
            raise KeyAdminError(f"no key with id or name {ref!r}")
        return key

    def revoke(self, ref: str, now: float | None = None) -> ApiKey:
        t = self.clock() if now is None else now
        key = self.get(ref)
        if key.revoked_at is None or key.revoked_at > t:
            self.store.execute("UPDATE api_keys SET revoked_at = ?, updated_at = ?, previous_until = NULL"
                               " WHERE id = ?", (t, t, key.id))
        return self.get(key.id)

    def rotate(self, ref: str, grace_s: float = 0.0, now: float | None = None) -> tuple[ApiKey, str]:
        """A new secret for the same key (same id, spend and limits); the old one works `grace_s` more."""
        t = self.clock() if now is None else now
        key = self.get(ref)
        if not key.active(t):
            raise KeyAdminError(f"key {key.name!r} is {key.state(t)}: create a new one instead")
        _, secret = new_key()
        self.store.execute(
            "UPDATE api_keys SET key_hash = ?, prefix = ?, previous_hash = ?, previous_until = ?, updated_at = ?"
            " WHERE id = ?",
            (hash_key(secret), secret[:_SHOWN], key.key_hash if grace_s > 0 else None,
             t + grace_s if grace_s > 0 else None, t, key.id),
        )
        return self.get(key.id), secret

    def usage(self, keys: Sequence[ApiKey], now: float | None = None, *, totals: bool = True) -> dict[str, KeyUsage]:
        """Per key id: spend in its budget period (and, with `totals`, since it exists), all replicas.

        Reads the per-day table: without `totals` only the days of the longest current period.
        """
        t = self.clock() if now is None else now
        if not keys:
            return {}
        starts = {k.id: int(period_start(k.budget_period, t) // 86400) for k in keys}
        since = 0 if totals else min(starts.values())
        rows = self.store.query(
            "SELECT key_id, day, requests, refused, tokens, local_only, cost_usd FROM api_key_usage WHERE day >= ?", (since,))
        acc: dict[str, list[float]] = {k.id: [0.0, 0.0, 0, 0, 0, 0] for k in keys}
        for kid, day, req, ref, tok, loc, cost in rows:
            a = acc.get(str(kid))
            if a is None:
                continue
            if int(day) >= starts[str(kid)]:
                a[0] += float(cost)
            a[1] += float(cost)
            a[2] += int(req)
            a[3] += int(ref)
            a[4] += int(tok)
            a[5] += int(loc)
        return {kid: KeyUsage(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5])) for kid, a in acc.items()}
