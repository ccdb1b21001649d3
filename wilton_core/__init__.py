"""WiltonOS LLM stack: a local-first router holding a target local share (phi) of LLM traffic.

The seed's in-process API is importable from the package root::

    from wilton_core import detect_intent, Intent, get_fallback_manager, get_ollama_client

Every name loads on first access (module `__getattr__`), so `import wilton_core` — which every
process and CLI of the stack does — stays cheap and opens nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wilton_core._lazy import lazy_exports

if TYPE_CHECKING:
    from wilton_core.api.defaults import (
        configure,
        get_fallback_manager,
        get_latency_tracker,
        get_ollama_client,
        get_router,
    )
    from wilton_core.api.engine import InProcessRouter
    from wilton_core.api.manager import FallbackManager
    from wilton_core.api.ollama_client import GenerateResponse, OllamaClient
    from wilton_core.api.result import ChatResult
    from wilton_core.core.intent import Intent, detect_intent
    from wilton_core.core.latency import LatencyTracker

__version__ = "0.1.0"

_EXPORTS = {
    "Intent": "wilton_core.core.intent",
    "detect_intent": "wilton_core.core.intent",
    "LatencyTracker": "wilton_core.core.latency",
    "ChatResult": "wilton_core.api.result",
    "FallbackManager": "wilton_core.api.manager",
    "GenerateResponse": "wilton_core.api.ollama_client",
    "InProcessRouter": "wilton_core.api.engine",
    "OllamaClient": "wilton_core.api.ollama_client",
    "configure": "wilton_core.api.defaults",
    "get_fallback_manager": "wilton_core.api.defaults",
    "get_latency_tracker": "wilton_core.api.defaults",
    "get_ollama_client": "wilton_core.api.defaults",
    "get_router": "wilton_core.api.defaults",
}

__all__ = [
    "ChatResult",
    "FallbackManager",
    "GenerateResponse",
    "InProcessRouter",
    "Intent",
    "LatencyTracker",
    "OllamaClient",
    "configure",
    "detect_intent",
    "get_fallback_manager",
    "get_latency_tracker",
    "get_ollama_client",
    "get_router",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
