"""The process-wide instances behind `get_fallback_manager()`, `get_ollama_client()` and
`get_latency_tracker()` — the one singleton the library allows, at its entry point.

All three share one `InProcessRouter` (one store connection, one ledger writer, one latency
tracker), created on first use from the environment. `configure(...)` replaces it with one built
from your arguments (config, store, transport, ...); `reset()` / `aclose()` close it so tests
and long-lived apps can start over. At interpreter exit the ledger is flushed.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wilton_core.api.engine import InProcessRouter
    from wilton_core.api.manager import FallbackManager
    from wilton_core.api.ollama_client import OllamaClient
    from wilton_core.core.latency import LatencyTracker

__all__ = [
    "aclose",
    "configure",
    "get_fallback_manager",
    "get_latency_tracker",
    "get_ollama_client",
    "get_router",
    "reset",
    "reset_fallback_manager",
    "reset_latency_tracker",
    "reset_ollama_client",
]


class _Defaults:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.options: dict[str, Any] = {}
        self.router: InProcessRouter | None = None
        self.manager: FallbackManager | None = None
        self.ollama: OllamaClient | None = None
        self.atexit_registered = False

    def take(self) -> InProcessRouter | None:
        with self.lock:
            router, self.router, self.manager, self.ollama = self.router, None, None, None
            return router


_DEFAULTS = _Defaults()


def _close_at_exit() -> None:
    router = _DEFAULTS.take()
    if router is not None:
        router.close()


def get_router() -> InProcessRouter:
    """The shared in-process router, created (not started) on first call."""
    with _DEFAULTS.lock:
        if _DEFAULTS.router is None:
            from wilton_core.api.engine import InProcessRouter

            _DEFAULTS.router = InProcessRouter(**_DEFAULTS.options)
            if not _DEFAULTS.atexit_registered:
                atexit.register(_close_at_exit)
                _DEFAULTS.atexit_registered = True
        return _DEFAULTS.router


def get_fallback_manager() -> FallbackManager:
    with _DEFAULTS.lock:
        if _DEFAULTS.manager is None:
            from wilton_core.api.manager import FallbackManager

            _DEFAULTS.manager = FallbackManager(get_router())
        return _DEFAULTS.manager


def get_ollama_client() -> OllamaClient:
    with _DEFAULTS.lock:
        if _DEFAULTS.ollama is None:
            from wilton_core.api.ollama_client import OllamaClient

            _DEFAULTS.ollama = OllamaClient(get_router())
        return _DEFAULTS.ollama


def get_latency_tracker() -> LatencyTracker:
    """The tracker the in-process router records every answered request into.

    `get_stats()` → `{'llm': {'avg': .., 'max': .., 'p50': .., 'p95': .., 'target': 2.0, 'count': n}, ...}`;
    other stages (stt, tts_generate, ...) are yours to `record(stage, seconds)`.
    """
    return get_router().latency


def configure(**router_options: Any) -> None:
    """Build the shared router from these `InProcessRouter` arguments from now on.

    Closes the current one (flushing its ledger) if it exists; call it before the first request,
    e.g. `configure(config=load_config("wilton.toml"), store=open_store(url))`.
    """
    with _DEFAULTS.lock:
        old = _DEFAULTS.take()
        _DEFAULTS.options = dict(router_options)
    if old is not None:
        old.close()


def reset() -> None:
    """Close the shared router and forget every shared instance and option (tests)."""
    with _DEFAULTS.lock:
        old = _DEFAULTS.take()
        _DEFAULTS.options = {}
    if old is not None:
        old.close()


async def aclose() -> None:
    """`reset()` from inside an event loop: also stops the services running on it."""
    with _DEFAULTS.lock:
        old = _DEFAULTS.take()
    if old is not None:
        await old.aclose()


def reset_fallback_manager() -> None:
    with _DEFAULTS.lock:
        _DEFAULTS.manager = None


def reset_ollama_client() -> None:
    with _DEFAULTS.lock:
        _DEFAULTS.ollama = None


def reset_latency_tracker() -> None:
    """Forget every recorded latency (the tracker object stays the same)."""
    with _DEFAULTS.lock:
        router = _DEFAULTS.router
    if router is not None:
        router.latency.reset()
