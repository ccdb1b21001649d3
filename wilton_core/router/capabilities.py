"""What a pinned model cannot do with a request, said before anything is sent (pure).

`auto` routing already leaves out models that lack vision or tools; a pinned model used to get
the request anyway (an image forwarded to a text-only model, which then ignored or choked on it).
Each check here turns that into a 400 naming the model and what it lacks.
"""

from __future__ import annotations

from typing import Any

from wilton_core.config import ModelConfig
from wilton_core.core.messages import has_images
from wilton_core.errors import RequestError

__all__ = ["pinned_refusal"]


def pinned_refusal(cfg: ModelConfig, body: dict[str, Any]) -> RequestError | None:
    """The 400 for sending `body` to the pinned model `cfg`, or None when it can take it."""
    if not cfg.supports_vision and has_images(body["messages"]):
        return RequestError(f"The model '{cfg.id}' does not accept images (supports_vision = false); "
                            "pin a vision model or use model 'auto'.", param="model", code="model_not_supported")
    rf = body.get("response_format")
    if cfg.provider == "anthropic" and body.get("tools") and isinstance(rf, dict) and rf.get("type") in (
            "json_object", "json_schema"):
        return RequestError(f"The model '{cfg.id}' cannot combine response_format with tools (JSON mode is a "
                            "forced tool on Anthropic); drop one, or pin another model.", param="response_format",
                            code="model_not_supported")
    return None
