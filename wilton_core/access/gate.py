"""The gate in front of the router: who is asking, may they use this model, within budget and limits?

Pure decisions (`presented_key`, `privacy_local_only`, `authenticate`, `check_model`,
`check_budget`) over a key table held in memory; `Gate` is the shell that refreshes that table
and each key's spend from the store every `refresh_s` (1 s) in a thread, off the request path,
and asks the rate limiter (memory or Redis). The request path never reads the store.

Bounds, stated once (docs/access.md repeats them):
- revocation and every other key change reach each replica within `refresh_s` plus one store read;
- a budget is checked against the spend in the store at the last refresh plus what this process
  spent since its records were written, so a request that starts after the budget is spent is
  refused. Overshoot: requests already admitted when the budget runs out (in flight, on every
  replica) still finish and are charged, plus what other replicas admit before their next
  refresh sees the spend — at most (requests in flight + requests admitted in one `refresh_s`
  + ledger flush interval, all replicas) × the cost of one request.

Refusals are OpenAI-shaped errors and each is a ledger row (status "error", the refusal's code as
error_class, the HTTP status, the key id when the key is known).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wilton_core.access.caller import OPEN, Caller
from wilton_core.access.keys import ApiKey, KeyRepo, hash_key, looks_like_key, period_start
from wilton_core.access.ratelimit import LimitCheck, RateLimiter
from wilton_core.access.spend import SpendBook
from wilton_core.core.preferences import AUTO_MODELS
from wilton_core.router.wire import error_body
from wilton_core.types import LedgerRecord

if TYPE_CHECKING:
    from wilton_core.store.base import Store
    from wilton_core.store.ledger_writer import LedgerWriter

__all__ = [
    "AUTO_MODELS",
    "Gate",
    "KeyTable",
    "Refusal",
    "authenticate",
    "check_budget",
    "check_model",
    "exposure_error",
    "presented_key",
    "privacy_local_only",
]

log = logging.getLogger("wilton.access")

# the error classes of gate refusals (migration 0011 counts these as `refused`)
REFUSAL_CODES = ("invalid_api_key", "model_not_allowed", "model_not_local", "invalid_privacy_header",
                 "rate_limit_exceeded", "insufficient_quota")
_MAX_HEADER = 512


@dataclass(slots=True, frozen=True)
class Refusal:
    status: int
    message: str
    type: str
    code: str
    param: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    key_id: str = ""
    local_only: bool = False

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.param, self.code)


@dataclass(slots=True, frozen=True)
class KeyTable:
    """Keys by hash (current and, during a rotation's grace, previous). `configured`: any key exists,
    revoked ones included — once keys are in use, revoking the last one must not open the gate."""

    by_hash: Mapping[str, ApiKey] = field(default_factory=dict)
    by_id: Mapping[str, ApiKey] = field(default_factory=dict)
    configured: bool = False

    @classmethod
    def of(cls, keys: Iterable[ApiKey], now: float) -> KeyTable:
        by_hash: dict[str, ApiKey] = {}
        by_id: dict[str, ApiKey] = {}
        for k in keys:
            by_id[k.id] = k
            by_hash[k.key_hash] = k
            if k.previous_hash and k.previous_until is not None and k.previous_until > now:
                by_hash[k.previous_hash] = k
        return cls(by_hash, by_id, bool(by_id))


# ---- pure decisions -------------------------------------------------------------------------


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key from `Authorization: Bearer …` (OpenAI SDK) or `x-api-key` (Anthropic style)."""
    hs = list(headers)
    auth = _header(hs, b"authorization")
    if auth is not None:
        scheme, _, token = auth.strip().partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip()[:_MAX_HEADER].decode("latin-1")
        return ""  # present but not a bearer token: wrong, not absent
    key = _header(hs, b"x-api-key")
    if key is not None:
        return key.strip()[:_MAX_HEADER].decode("latin-1")
    return None


def privacy_local_only(headers: Iterable[tuple[bytes, bytes]]) -> bool | Refusal:
    """`x-wilton-privacy: local-only` → True. An unknown value is refused: a typo must fail closed."""
    v = _header(headers, b"x-wilton-privacy")
    if v is None:
        return False
    value = v.strip().lower()
    if value in (b"local-only", b"local_only", b"local"):
        return True
    if value in (b"", b"none", b"off"):
        return False
    return Refusal(400, "x-wilton-privacy must be 'local-only' (or 'none'); this request was not sent anywhere.",
                   "invalid_request_error", "invalid_privacy_header", "x-wilton-privacy", local_only=True)


def _invalid(message: str, key_id: str = "") -> Refusal:
    return Refusal(401, message, "invalid_request_error", "invalid_api_key", None,
                   ((b"www-authenticate", b'Bearer realm="wilton"'),), key_id)


def authenticate(presented: str | None, master_hash: bytes | None, table: KeyTable, now: float,
                 ) -> ApiKey | Caller | Refusal:
    """The key behind `presented`: an ApiKey, the admin Caller for the master key, or a 401."""
    if presented is None:
        return _invalid("You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                        "(or 'x-api-key: <key>').")
    if master_hash is not None and hmac.compare_digest(
            hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest(), master_hash):
        return Caller(key_name="master", admin=True)
    if looks_like_key(presented):
        key = table.by_hash.get(hash_key(presented))
        if key is not None:
            if key.active(now):
                return key
            return _invalid(f"This API key is {key.state(now)}.", key.id)
    return _invalid("Incorrect API key provided.")


def check_model(caller: Caller, requested: str, models: Mapping[str, bool]) -> Refusal | None:
    """403 when the caller may not use the requested model (or, for auto, any model at all).

    `models`: configured model id → is_local.
    """
    if requested in AUTO_MODELS:
        if caller.local_only and requested == "api":
            return Refusal(403, "This request is local-only: model 'api' would send it to an API model.",
                           "invalid_request_error", "model_not_local", "model", key_id=caller.key_id,
                           local_only=True)
        if caller.restricted and not any(caller.permits(m, loc) for m, loc in models.items()):
            return Refusal(403, "This key may not use any configured model.", "invalid_request_error",
                           "model_not_allowed", "model", key_id=caller.key_id, local_only=caller.local_only)
        return None
    from wilton_core.access.keys import model_allowed

    if not model_allowed(caller.models, requested):
        return Refusal(403, f"This key may not use the model '{requested[:128]}'.", "invalid_request_error",
                       "model_not_allowed", "model", key_id=caller.key_id, local_only=caller.local_only)
    if caller.local_only and not models.get(requested, True):
        return Refusal(403, f"This request is local-only and '{requested}' is not a local model; "
                            "nothing was sent.", "invalid_request_error", "model_not_local", "model",
                       key_id=caller.key_id, local_only=True)
    return None


def check_budget(key: ApiKey, spent_usd: float, now: float) -> Refusal | None:
    if key.budget_usd is None or spent_usd < key.budget_usd:
        return None
    period = "" if key.budget_period == "total" else f" for this {key.budget_period}"
    msg = (f"You exceeded this key's budget{period} (${key.budget_usd:.2f}, spent ${spent_usd:.4f}).")
    if key.budget_period != "total":
        nxt = _next_period(key.budget_period, now)
        msg += f" It renews at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(nxt))}."
    return Refusal(429, msg, "insufficient_quota", "insufficient_quota", key_id=key.id,
                   local_only=key.local_only)


def _next_period(period: str, now: float) -> float:
    start = period_start(period, now)
    probe = start + {"day": 1.5, "week": 7.5, "month": 32.0}[period] * 86400
    return period_start(period, probe)


def rate_refusal(checks: list[LimitCheck], key: ApiKey) -> Refusal | None:
    failed = next((c for c in checks if not c.ok), None)
    if failed is None:
        return None
    headers = [h for c in checks for h in c.headers()]
    headers.append((b"retry-after", str(max(1, math.ceil(failed.reset_s))).encode()))
    what = "requests per minute" if failed.kind == "requests" else "tokens per minute"
    return Refusal(429, f"Rate limit reached for this key: {failed.limit} {what}. Try again in "
                        f"{max(1, math.ceil(failed.reset_s))}s.", failed.kind, "rate_limit_exceeded",
                   headers=tuple(headers), key_id=key.id, local_only=key.local_only)


# ---- the shell ------------------------------------------------------------------------------


class Gate:
    def __init__(
        self,
        *,
        models: Mapping[str, bool],
        master_key: str | None = None,
        store: Store | None = None,
        writer: LedgerWriter | None = None,
        redis_url: str | None = None,
        refresh_s: float = 1.0,
        replica: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.models = dict(models)
        self._master = hashlib.sha256(master_key.encode()).digest() if master_key else None
        self.repo = KeyRepo(store, clock) if store is not None else None
        self.writer = writer
        self.limiter = RateLimiter(redis_url)
        self.refresh_s = refresh_s
        self.replica = replica
        self._clock = clock
        self.table = KeyTable()
        self.spend = SpendBook()
        self.refreshed_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._charger: asyncio.Task[None] | None = None
        self._tokens: dict[str, int] = {}  # TPM charges not yet sent to the limiter, by key id
        self.anonymous_rows_per_s = 20
        self.anonymous_dropped = 0
        self._anon_second = 0
        self._anon_rows = 0
        self.charge_every_s = 0.05
        self._ids = random.Random()

    @property
    def has_master_key(self) -> bool:
        return self._master is not None

    @property
    def enabled(self) -> bool:
        """Authentication is required: a master key is set or any virtual key exists."""
        return self._master is not None or self.table.configured

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.limiter.start()
        if self.repo is not None:
            await self.refresh(raise_errors=True)
            self._task = asyncio.create_task(self._loop(), name="access-refresh")
            self._charger = asyncio.create_task(self._charge_loop(), name="access-tpm")

    async def stop(self) -> None:
        for task in (self._task, self._charger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._charger = None
        with contextlib.suppress(Exception):
            await self.charge_tokens()
        self.limiter.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh()

    async def _charge_loop(self) -> None:
        while True:
            await asyncio.sleep(self.charge_every_s)
            await self.charge_tokens()

    async def charge_tokens(self) -> None:
        """Send the tokens answered since the last call to the TPM limiter, one hit per key.

        Batched off the request path: TPM sees an answer's tokens within `charge_every_s`.
        """
        pending, self._tokens = self._tokens, {}
        for kid, tokens in pending.items():
            key = self.table.by_id.get(kid)
            if key is not None and key.tpm:
                await self.limiter.charge_tokens(kid, key.tpm, tokens)

    async def refresh(self, raise_errors: bool = False) -> None:
        """Keys and spend from the store, in a thread. A failed read keeps the last table."""
        assert self.repo is not None
        repo = self.repo
        settled = self._settled()
        try:
            keys, usage = await asyncio.to_thread(self._read, repo)
        except Exception as e:
            if raise_errors:
                raise
            log.warning("key table refresh failed: %s", type(e).__name__)
            return
        now = self._clock()
        self.table = KeyTable.of(keys, now)
        self.spend.settle({kid: u for kid, u in usage.items()}, settled)
        self.refreshed_at = now

    @staticmethod
    def _read(repo: KeyRepo) -> tuple[list[ApiKey], dict[str, float]]:
        keys = repo.all()
        usage = repo.usage([k for k in keys if k.budget_usd is not None], totals=False)
        return keys, {kid: u.period_cost_usd for kid, u in usage.items()}

    def _settled(self) -> int:
        if self.writer is None:
            return self.spend.seq
        st = self.writer.stats()
        return int(st.written + st.dropped + st.rejected)

    # -- request path ---------------------------------------------------------------------

    def identify(self, headers: Iterable[tuple[bytes, bytes]]) -> Caller | Refusal:
        """Authentication and the privacy header only (for /v1/models and the chat handler)."""
        hs = list(headers)
        local = privacy_local_only(hs)
        if isinstance(local, Refusal):
            return local
        if not self.enabled:
            return Caller(local_only=True) if local else OPEN
        who = authenticate(presented_key(hs), self._master, self.table, self._clock())
        if isinstance(who, Refusal):
            return who
        if isinstance(who, Caller):
            return Caller(key_name=who.key_name, admin=True, local_only=local) if local else who
        return Caller(key_id=who.id, key_name=who.name, admin=False, models=who.models,
                      local_only=who.local_only or local)

    async def check(self, headers: Iterable[tuple[bytes, bytes]], body: Any) -> Caller | Refusal:
        """The one call before routing a chat request; a refusal is already in the ledger."""
        caller = self.identify(headers)
        if caller is OPEN:
            return caller
        requested = body.get("model") if isinstance(body, dict) else None
        requested = requested if isinstance(requested, str) else "auto"
        verdict = caller if isinstance(caller, Refusal) else await self._admit(caller, requested)
        if isinstance(verdict, Refusal):
            self._record_refusal(verdict, requested)
        return verdict

    async def _admit(self, caller: Caller, requested: str) -> Caller | Refusal:
        refusal = check_model(caller, requested, self.models)
        if refusal is not None or not caller.key_id:
            return refusal or caller
        key = self.table.by_id[caller.key_id]
        refusal = check_budget(key, self.spend.of(key.id), self._clock())
        if refusal is not None:
            return refusal
        if not (key.rpm or key.tpm):
            return caller
        checks = await self.limiter.admit(key.id, key.rpm, key.tpm)
        refusal = rate_refusal(checks, key)
        if refusal is not None:
            return refusal
        return Caller(caller.key_id, caller.key_name, False, caller.models, caller.local_only,
                      tuple(h for c in checks for h in c.headers()))

    def _record_refusal(self, r: Refusal, requested: str) -> None:
        if self.writer is None:
            return
        if not r.key_id and r.code == "invalid_api_key":
            # Anyone can send bad keys: at most `anonymous_rows_per_s` such rows per second reach
            # the ledger (the rest are counted in `anonymous_dropped`), so a flood cannot fill it.
            second = int(time.monotonic())
            if second != self._anon_second:
                self._anon_second, self._anon_rows = second, 0
            self._anon_rows += 1
            if self._anon_rows > self.anonymous_rows_per_s:
                self.anonymous_dropped += 1
                return
        model = requested if requested in self.models else ""
        self.spend.tick()
        self.writer.submit(LedgerRecord(
            ts=self._clock(), request_id=f"gate-{self._ids.getrandbits(96):024x}", model_id=model,
            tier="", is_local=False, provider="", status="error", error_class=r.code, replica=self.replica,
            http_status=r.status, key_id=r.key_id, local_only=r.local_only,
        ))

    def observe(self, record: LedgerRecord) -> None:
        """A router ledger record on its way to the writer: charge spend and TPM."""
        self.spend.add(record.key_id, record.cost_usd)
        tokens = record.tokens_in + record.tokens_out
        if record.key_id and tokens > 0:
            key = self.table.by_id.get(record.key_id)
            if key is not None and key.tpm:
                self._tokens[key.id] = self._tokens.get(key.id, 0) + tokens


def exposure_error(host: str, has_master_key: bool, allow_unauthenticated: bool) -> str | None:
    """Why the router must not start: a non-loopback address with no client authentication."""
    import ipaddress

    if has_master_key or allow_unauthenticated:
        return None
    name = host.strip("[]")
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return (f"refusing to serve {host} without client keys: set WILTON_MASTER_KEY "
            "(e.g. `openssl rand -hex 24`), or pass --allow-unauthenticated if anyone who can reach it may spend")
