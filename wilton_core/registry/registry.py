"""Model registry: test every configured model with a short real generation and remember the result.

A test is one real chat completion through the same provider code the router uses (seed 002:
"test obligatoire"), with a small `max_tokens`. Its outcome is one of
untested | available | failed | rate_limited, plus latency, time and an error kind with a short
scrubbed message — never a key. Results live in the shared store (table `model_status`,
migration 0040) so `wiltonctl models list`, the wizard and the router all see the same thing.
`due_for_retest` is the pure schedule that decides when a failed model is worth another try.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from wilton_core.config import ModelConfig, StackConfig
from wilton_core.errors import ProviderError, RateLimitedError

if TYPE_CHECKING:
    from wilton_core.providers.base import Provider
    from wilton_core.store.base import Store

__all__ = [
    "PROBE_MAX_TOKENS",
    "STATUSES",
    "ModelRegistry",
    "ModelRow",
    "ProbeResult",
    "ProviderFactory",
    "RetestPolicy",
    "StatusTable",
    "default_provider_factory",
    "due_for_retest",
    "next_retest_at",
    "probe_body",
    "scrub",
    "test_all",
    "test_model",
]

Status = Literal["untested", "available", "failed", "rate_limited"]
STATUSES: tuple[str, ...] = ("untested", "available", "failed", "rate_limited")
PROBE_MAX_TOKENS = 8
ERROR_MAX_CHARS = 240

ProviderFactory = Callable[[ModelConfig], "Provider"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The last test of one model. `error` is "<kind>: <short message>" or None."""

    model_id: str
    status: Status
    latency_ms: float | None = None
    tested_at: float | None = None
    error: str | None = None
    failures: int = 0            # consecutive failed tests, including this one

    @property
    def error_kind(self) -> str | None:
        return self.error.split(":", 1)[0] if self.error else None

    @property
    def ok(self) -> bool:
        """Reachable and authorised: a rate-limited model works, it is only busy."""
        return self.status in ("available", "rate_limited")


def probe_body() -> dict[str, Any]:
    return {
        "model": "probe",
        "messages": [{"role": "user", "content": "Reply with the single word: ok"}],
        "max_tokens": PROBE_MAX_TOKENS,
        "temperature": 0,
        "stream": False,
    }


# Shapes of common API keys and bearer tokens: scrubbed even when we do not know the value, since
# an upstream may echo back a key other than the one we sent (e.g. from a proxy).
_KEYLIKE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|gsk_[A-Za-z0-9]{8,}|AIza[0-9A-Za-z_\-]{20,}|sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{8,}|(?i:(?:api[_-]?key|key|token)=)[^\s&\"']+)"
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secret values and key-shaped tokens; collapse whitespace; truncate."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    text = _KEYLIKE.sub("***", text)
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def default_provider_factory(transport: Any = None, environ: Mapping[str, str] | None = None) -> ProviderFactory:
    def make(model: ModelConfig) -> Provider:
        # Imported on first use: the providers pull in HTTP/SDK clients the CLI may never need.
        from wilton_core.providers.factory import make_provider

        return make_provider(model, transport=transport, environ=environ)

    return make


async def test_model(
    model: ModelConfig,
    *,
    provider_factory: ProviderFactory | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    clock: Callable[[], float] = time.perf_counter,
    now: Callable[[], float] = time.time,
) -> ProbeResult:
    """One short real generation against `model`; never raises for upstream failures."""
    if not model.is_configured(environ):
        names = " or ".join(model.key_env_names)
        return ProbeResult(model.id, "untested", None, now(), f"not_configured: set {names}")
    factory = provider_factory or default_provider_factory(environ=environ)
    secrets = [k for k in (model.api_key(environ),) if k]
    try:
        provider = factory(model)
    except Exception as exc:  # a bad base_url or a missing SDK is a failed test, not a crash
        return ProbeResult(model.id, "failed", None, now(), scrub(f"config: {exc}", secrets), 1)
    start = clock()
    try:
        await asyncio.wait_for(provider.complete(probe_body()), timeout)
        latency_ms = (clock() - start) * 1000.0
    except RateLimitedError as exc:
        msg = exc.message + (f" (retry after {exc.retry_after:g}s)" if exc.retry_after else "")
        return ProbeResult(model.id, "rate_limited", None, now(), scrub(f"{exc.kind}: {msg}", secrets), 1)
    except ProviderError as exc:
        return ProbeResult(model.id, "failed", None, now(), scrub(f"{exc.kind}: {exc.message}", secrets), 1)
    except TimeoutError:
        return ProbeResult(model.id, "failed", None, now(), f"timeout: no reply within {timeout:g}s", 1)
    except Exception as exc:  # a provider bug must show up as a failed model, readable, not a crash
        return ProbeResult(
            model.id, "failed", None, now(), scrub(f"unexpected: {type(exc).__name__}: {exc}", secrets), 1
        )
    finally:
        # closing a half-broken client must not hide the test result
        with contextlib.suppress(Exception):
            await provider.aclose()
    return ProbeResult(model.id, "available", round(latency_ms, 1), now(), None, 0)


test_model.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


async def test_all(
    models: Sequence[ModelConfig],
    timeout: float = 30.0,
    *,
    concurrency: int = 8,
    provider_factory: ProviderFactory | None = None,
    environ: Mapping[str, str] | None = None,
    on_result: Callable[[ProbeResult], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    now: Callable[[], float] = time.time,
) -> dict[str, ProbeResult]:
    """Test `models` concurrently (at most `concurrency` at once), each bounded by `timeout`."""
    sem = asyncio.Semaphore(max(1, concurrency))
    factory = provider_factory or default_provider_factory(environ=environ)

    async def one(m: ModelConfig) -> ProbeResult:
        async with sem:
            r = await test_model(m, provider_factory=factory, environ=environ, timeout=timeout,
                                 clock=clock, now=now)
        if on_result is not None:
            on_result(r)
        return r

    results = await asyncio.gather(*(one(m) for m in models))
    return {r.model_id: r for r in results}


test_all.__test__ = False  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RetestPolicy:
    """When to test again: failures back off exponentially; available models are re-verified."""

    failed_base_s: float = 60.0
    failed_factor: float = 2.0
    failed_max_s: float = 3600.0
    rate_limited_s: float = 300.0
    available_every_s: float | None = 6 * 3600.0


def next_retest_at(result: ProbeResult | None, policy: RetestPolicy) -> float | None:
    """Earliest time a re-test is worth it; 0.0 = now; None = never (available, no re-verify)."""
    if result is None or result.tested_at is None or result.status == "untested":
        return 0.0
    t = result.tested_at
    if result.status == "available":
        return None if policy.available_every_s is None else t + policy.available_every_s
    if result.status == "rate_limited":
        return t + policy.rate_limited_s
    n = max(1, result.failures)
    delay = policy.failed_base_s * policy.failed_factor ** min(n - 1, 60)
    return t + min(delay, policy.failed_max_s)


def due_for_retest(result: ProbeResult | None, now: float, policy: RetestPolicy | None = None) -> bool:
    at = next_retest_at(result, policy or RetestPolicy())
    return at is not None and now >= at


class StatusTable:
    """The `model_status` table over the store's generic SQL API."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, result: ProbeResult) -> ProbeResult:
        """Upsert; a failure increments the stored consecutive-failure count. Returns what was stored."""
        with self.store.transaction():
            row = self.store.query_one("SELECT failures FROM model_status WHERE model_id = ?",
                                       (result.model_id,))
            failures = 0
            if result.status in ("failed", "rate_limited"):
                failures = (int(row[0]) if row else 0) + 1
            stored = replace(result, failures=failures)
            self.store.execute(
                "INSERT INTO model_status (model_id, status, latency_ms, tested_at, error, failures)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (model_id) DO UPDATE SET status = excluded.status,"
                " latency_ms = excluded.latency_ms, tested_at = excluded.tested_at,"
                " error = excluded.error, failures = excluded.failures",
                (stored.model_id, stored.status, stored.latency_ms, stored.tested_at, stored.error,
                 stored.failures),
            )
        return stored

    def load(self) -> dict[str, ProbeResult]:
        rows = self.store.query(
            "SELECT model_id, status, latency_ms, tested_at, error, failures FROM model_status"
        )
        out: dict[str, ProbeResult] = {}
        for mid, status, lat, at, err, fails in rows:
            st: Status = status if status in STATUSES else "untested"
            out[str(mid)] = ProbeResult(
                str(mid), st, None if lat is None else float(lat), None if at is None else float(at),
                err, int(fails or 0),
            )
        return out


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One line of `wiltonctl models list`."""

    id: str
    provider: str
    model: str
    tier: str
    is_local: bool
    capability: str
    configured: bool
    status: str
    latency_ms: float | None
    tested_at: float | None
    error: str | None
    input_cost_per_mtok: float
    output_cost_per_mtok: float

    @property
    def price(self) -> str:
        if not (self.input_cost_per_mtok or self.output_cost_per_mtok):
            return "free"
        return f"${self.input_cost_per_mtok:g}/${self.output_cost_per_mtok:g} per Mtok"


class ModelRegistry:
    """The configured models, their test results (in the store when given, else in memory)."""

    def __init__(
        self,
        models: StackConfig | Sequence[ModelConfig],
        *,
        store: Store | None = None,
        provider_factory: ProviderFactory | None = None,
        transport: Any = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.models: list[ModelConfig] = list(models.models if isinstance(models, StackConfig) else models)
        self.table = StatusTable(store) if store is not None else None
        self.environ = environ
        self.provider_factory = provider_factory or default_provider_factory(transport=transport, environ=environ)
        self.clock = clock
        self._memory: dict[str, ProbeResult] = {}

    def by_id(self) -> dict[str, ModelConfig]:
        return {m.id: m for m in self.models}

    def get(self, model_id: str) -> ModelConfig:
        """The model with this id; KeyError names the configured ids."""
        m = self.by_id().get(model_id)
        if m is None:
            known = ", ".join(self.by_id()) or "(none)"
            raise KeyError(f"no configured model '{model_id}' (configured: {known})")
        return m

    def configured(self) -> list[ModelConfig]:
        return [m for m in self.models if m.is_configured(self.environ)]

    def record(self, result: ProbeResult) -> ProbeResult:
        if self.table is not None:
            stored = self.table.save(result)
        else:
            prev = self._memory.get(result.model_id)
            fails = ((prev.failures if prev else 0) + 1) if result.status in ("failed", "rate_limited") else 0
            stored = replace(result, failures=fails)
        self._memory[stored.model_id] = stored
        return stored

    def status_map(self) -> dict[str, ProbeResult]:
        """The last result per model id (store first; results of this process on top)."""
        out = self.table.load() if self.table is not None else {}
        out.update(self._memory)
        return out

    async def test(
        self,
        ids: Sequence[str] | None = None,
        *,
        timeout: float = 30.0,
        concurrency: int = 8,
        on_result: Callable[[ProbeResult], None] | None = None,
        perf_clock: Callable[[], float] = time.perf_counter,
    ) -> dict[str, ProbeResult]:
        """Test the given ids (default: every configured model) and persist each result."""
        models = [self.get(i) for i in ids] if ids is not None else self.configured()

        def persist(r: ProbeResult) -> None:
            stored = self.record(r)
            if on_result is not None:
                on_result(stored)

        await test_all(models, timeout, concurrency=concurrency, provider_factory=self.provider_factory,
                       environ=self.environ, on_result=persist, clock=perf_clock, now=self.clock)
        return {m.id: self._memory[m.id] for m in models}

    def due(self, now: float, policy: RetestPolicy | None = None) -> list[str]:
        """Configured model ids worth re-testing at `now`."""
        statuses = self.status_map()
        # the probe is a chat generation: embedding models (h6) are not probed by it
        return [m.id for m in self.configured()
                if m.kind == "chat" and due_for_retest(statuses.get(m.id), now, policy)]

    def rows(self, statuses: Mapping[str, ProbeResult] | None = None) -> list[ModelRow]:
        st = self.status_map() if statuses is None else statuses
        rows = []
        for m in self.models:
            r = st.get(m.id)
            rows.append(ModelRow(
                id=m.id, provider=m.provider, model=m.model, tier=m.tier, is_local=m.is_local,
                capability=m.capability, configured=m.is_configured(self.environ),
                status=r.status if r else "untested", latency_ms=r.latency_ms if r else None,
                tested_at=r.tested_at if r else None, error=r.error if r else None,
                input_cost_per_mtok=m.input_cost_per_mtok, output_cost_per_mtok=m.output_cost_per_mtok,
            ))
        return rows

