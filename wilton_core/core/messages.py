"""What a chat request says, read one way everywhere: text, images, size.

Messages arrive in OpenAI's shape (`content` a string or a list of parts). Every layer that asks
"what is the text", "are there images", "how big is it" asks here, so the router's capability
check, the scorer, the providers' usage estimates and prompt capture cannot disagree (they did:
one helper missed data-URL images another caught; one counted only parts typed "text").

The rules: a part's text is its string `text` field, whatever its type ("text", "input_text",
"output_text"); an image is a part typed image_url / input_image / image (or carrying an
`image_url`), or a `data:image/...;base64,` URL inside text. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "content_text",
    "estimate_text_tokens",
    "estimate_tokens",
    "has_images",
    "last_user_text",
    "message_texts",
    "prompt_chars",
    "transcript",
]

_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})
_DATA_IMAGE = re.compile(r"data:image/[a-z0-9.+-]+;base64,", re.I)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping):
        text = part.get("text")
        if isinstance(text, str):
            return text
    return ""


def _content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, Sequence):
        for part in content:
            text = _part_text(part)
            if text:
                yield text


def content_text(content: Any) -> str:
    """The text of one message's content (string or parts), parts joined by newlines; images skipped."""
    if isinstance(content, str):
        return content
    return "\n".join(_content_texts(content))


def message_texts(messages: Iterable[Any]) -> Iterator[str]:
    """Every text piece of a conversation, in order (non-dict messages are skipped)."""
    for m in messages:
        if isinstance(m, Mapping):
            yield from _content_texts(m.get("content"))


def has_images(messages: Iterable[Any]) -> bool:
    """True when any message carries an image part, or any text embeds an image data URL."""
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        content = m.get("content")
        if isinstance(content, str):
            if _DATA_IMAGE.search(content):
                return True
            continue
        if not isinstance(content, Sequence):
            continue
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") in _IMAGE_PART_TYPES or "image_url" in part:
                return True
            text = part.get("text")
            if isinstance(text, str) and _DATA_IMAGE.search(text):
                return True
    return False


def prompt_chars(messages: Any) -> int:
    """Characters of text in a conversation (0 for anything that is not a list of messages)."""
    if not isinstance(messages, list):
        return 0
    return sum(len(t) for t in message_texts(messages))


def estimate_text_tokens(text: str) -> int:
    """Tokens of a text, estimated without a tokenizer, leaning high.

    ~4 characters a token for ASCII (English, code); a token or more per character elsewhere:
    CJK, Cyrillic, Arabic... are 1-2 tokens a character in common tokenizers. chars/4 undercounted a
    Chinese prompt 4x and sent it to a model whose window it did not fit.
    """
    ascii_n = len(text) if text.isascii() else sum(1 for ch in text if ch < "\x80")
    return (ascii_n + 3) // 4 + (len(text) - ascii_n)


def estimate_tokens(messages: Any) -> int:
    """`estimate_text_tokens` over a conversation's text (images not counted)."""
    if not isinstance(messages, list):
        return 0
    return sum(estimate_text_tokens(t) for t in message_texts(messages))


def last_user_text(messages: Any) -> str:
    """The text of the last user message ("" when there is none)."""
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, Mapping) and m.get("role") == "user":
                return content_text(m.get("content"))
    return ""


def transcript(messages: Iterable[Any], limit: int = 4000) -> str:
    """`role: text` lines of a conversation (images dropped), cut to `limit` characters: what
    opt-in prompt capture stores."""
    lines = []
    for m in messages:
        if isinstance(m, Mapping):
            text = content_text(m.get("content"))
            if text:
                lines.append(f"{m.get('role', 'user')}: {text}")
    return "\n".join(lines)[:limit]
