"""MiniCPMVision: describe an image (base64) on the vision intent's local model.

The image goes as an OpenAI `image_url` data-URL part; each provider translates it (Ollama's
`images`, Gemini's inline data, Anthropic's base64 source). Only models with
supports_vision = true are ever pinned or chosen for it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar

from wilton_core.core.intent import Intent
from wilton_core.models.base import SpecialistModel

__all__ = ["DEFAULT_DESCRIBE_PROMPT", "MiniCPMVision", "image_data_url"]

DEFAULT_DESCRIBE_PROMPT = "Descreva esta imagem em detalhes."

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_data_url(image: str | bytes, mime: str | None = None) -> str:
    """A data URL for raw bytes, base64 text, or an existing data URL (returned as is).

    The MIME type is read from the image's first bytes when not given (PNG, JPEG, GIF, WebP);
    anything else is sent as image/png, which the vision APIs sniff anyway.
    """
    if isinstance(image, str) and image.startswith("data:"):
        return image
    if isinstance(image, bytes):
        raw, b64 = image, base64.b64encode(image).decode()
    else:
        b64 = "".join(image.split())
        try:
            raw = base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4), validate=False)
        except (binascii.Error, ValueError):
            raise ValueError("image is not base64 text") from None
    if mime is None:
        mime = next((m for magic, m in _MAGIC if raw.startswith(magic)), None)
        if mime is None:
            mime = "image/webp" if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP" else "image/png"
    return f"data:{mime};base64,{b64}"


class MiniCPMVision(SpecialistModel):
    intent: ClassVar[Intent] = Intent.VISION
    env_key: ClassVar[str] = "VISION_LOCAL_MODEL"
    default_model: ClassVar[str] = "minicpm-v"
    default_system_prompt: ClassVar[str] = ""
    default_temperature: ClassVar[float | None] = 0.2

    async def describe(self, image_base64: str | bytes, prompt: str = DEFAULT_DESCRIBE_PROMPT,
                       mime: str | None = None) -> str:
        """What the image shows; `image_base64` may also be raw bytes or a data URL."""
        content: list[dict[str, Any]] = [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": image_data_url(image_base64, mime)}},
        ]
        return (await self.ask(content)).text
