"""In-process Python API: the router's code path without HTTP (see docs/python-api.md).

Names load on first access, so importing this package costs nothing until you use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wilton_core._lazy import lazy_exports

if TYPE_CHECKING:
    from wilton_core.api.defaults import (
        aclose,
        configure,
        get_fallback_manager,
        get_latency_tracker,
        get_ollama_client,
        get_router,
        reset,
        reset_fallback_manager,
        reset_latency_tracker,
        reset_ollama_client,
    )
    from wilton_core.api.engine import InProcessRouter
    from wilton_core.api.manager import FallbackManager
    from wilton_core.api.ollama_client import GenerateResponse, OllamaClient
    from wilton_core.api.result import ChatResult

_EXPORTS = {
    "ChatResult": "wilton_core.api.result",
    "FallbackManager": "wilton_core.api.manager",
    "GenerateResponse": "wilton_core.api.ollama_client",
    "InProcessRouter": "wilton_core.api.engine",
    "OllamaClient": "wilton_core.api.ollama_client",
    **{name: "wilton_core.api.defaults" for name in (
        "aclose", "configure", "get_fallback_manager", "get_latency_tracker", "get_ollama_client",
        "get_router", "reset", "reset_fallback_manager", "reset_latency_tracker", "reset_ollama_client",
    )},
}

__all__ = [
    "ChatResult",
    "FallbackManager",
    "GenerateResponse",
    "InProcessRouter",
    "OllamaClient",
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
