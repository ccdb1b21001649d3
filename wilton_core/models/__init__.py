"""Seed 000's specialised models: DolphinChat (chat), QwenCoder (code), MiniCPMVision (images).

Each routes through the fallback manager with its intent and its default local model pinned
first, so a missing local model still gets an answer from whatever the router can use.
Defaults (override with the constructor's `model=` or the env):
    DolphinChat    CHAT_LOCAL_MODEL   else "dolphin-mistral"
    QwenCoder      CODE_LOCAL_MODEL   else "qwen2.5-coder:7b"
    MiniCPMVision  VISION_LOCAL_MODEL else "minicpm-v"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wilton_core._lazy import lazy_exports

if TYPE_CHECKING:
    from wilton_core.models.base import SpecialistModel
    from wilton_core.models.chat import DolphinChat
    from wilton_core.models.code import QwenCoder
    from wilton_core.models.vision import MiniCPMVision

_EXPORTS = {
    "DolphinChat": "wilton_core.models.chat",
    "MiniCPMVision": "wilton_core.models.vision",
    "QwenCoder": "wilton_core.models.code",
    "SpecialistModel": "wilton_core.models.base",
}

__all__ = [
    "DolphinChat",
    "MiniCPMVision",
    "QwenCoder",
    "SpecialistModel",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
