"""Keep secrets out of everything an insight run writes or sends.

Two nets: the exact values of every key-holding environment variable we know of (the
configured models' `api_key_env` names plus the insight backends' own), and patterns of
well-known key formats, for keys that reached a prompt or an upstream error by another road.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["KEY_ENV_NAMES", "Redactor"]

KEY_ENV_NAMES: tuple[str, ...] = (
    "OPENAI_API_KEY", "GEMINI_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY",
    "GROQ_API_KEY", "WILTON_ROUTER_API_KEY", "WILTON_JWT_SECRET", "WILTON_ADMIN_PASSWORD",
)
_PATTERNS = re.compile(
    r"(sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"       # OpenAI / Anthropic
    r"|gsk_[A-Za-z0-9]{20,}"                        # Groq
    r"|AIza[0-9A-Za-z_\-]{30,}"                     # Google API keys
    r"|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"  # JWTs
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{16,})"
)
MASK = "[REDACTED]"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret that contains another is masked whole; very short values
        # are not secrets worth masking and would shred ordinary text.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], extra_names: Iterable[str] = ()) -> Redactor:
        names = set(KEY_ENV_NAMES) | set(extra_names)
        names |= {n for n in environ if n.endswith(("_API_KEY", "_SECRET", "_PASSWORD", "_TOKEN"))}
        return cls(environ[n] for n in names if environ.get(n))

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, MASK)
        return _PATTERNS.sub(MASK, text)
