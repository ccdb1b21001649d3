"""Per-intent model preferences (seed 000's CHAT_PROVIDER / CHAT_LOCAL_MODEL ... and the config's
`routing.intent_defaults`), applied as an ordering inside each class of a decided chain.

A preference never moves a request across the local/API line — that is phi's job — it only says
which model of the chosen class goes first: chat on dolphin-mistral, code on qwen2.5-coder, vision
on Gemini when the request goes to the API class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["AUTO_MODELS", "ModelFacts", "PinCandidate", "apply_preferences", "merge_chain", "preferred_ids", "usable_pins"]

INTENTS = ("chat", "code", "vision", "system")

# `model` values that ask the router to choose, and the class each restricts the choice to
# (True: local only, False: API only, None: either). The one definition: the router's decision,
# the key gate's allow-lists and the in-process API's pins all read this.
AUTO_MODELS: Mapping[str, bool | None] = MappingProxyType({"auto": None, "": None, "local": True, "api": False})


@dataclass(frozen=True, slots=True)
class ModelFacts:
    id: str
    provider: str
    upstream: str
    base_url: str | None
    is_local: bool


def _provider_matches(m: ModelFacts, choice: str) -> bool:
    url = (m.base_url or "").lower()
    if choice == "local":
        return m.is_local
    if choice == "groq":
        return "groq" in url
    if choice == "openai":
        return m.provider == "openai" and not m.is_local and (not url or "api.openai.com" in url)
    return m.provider == choice  # gemini, anthropic


def preferred_ids(
    models: Iterable[ModelFacts],
    config_defaults: Mapping[str, str],
    provider_choice: Mapping[str, str],
    local_model_names: Mapping[str, str | None],
) -> dict[str, tuple[str, ...]]:
    """{intent: model ids in preference order}. SYSTEM follows CHAT unless configured itself."""
    ms = list(models)
    out: dict[str, tuple[str, ...]] = {}
    for intent in INTENTS:
        base = "chat" if intent == "system" else intent
        prefs: list[str] = []
        explicit = config_defaults.get(intent) or config_defaults.get(base)
        if explicit:
            prefs.append(explicit)
        name = local_model_names.get(base)
        if name:
            prefs += [m.id for m in ms if m.is_local and m.upstream == name]
        choice = provider_choice.get(base, "auto")
        if choice and choice != "auto":
            prefs += [m.id for m in ms if _provider_matches(m, choice)]
        out[intent] = tuple(dict.fromkeys(prefs))
    return out


def apply_preferences(chain: Sequence[str], preferred: Sequence[str], is_local: Mapping[str, bool]) -> list[str]:
    """Stable reorder: within each class block of `chain`, preferred ids first (in their order)."""
    if not preferred:
        return list(chain)
    rank = {mid: i for i, mid in enumerate(preferred)}
    n = len(preferred)
    first_local = is_local.get(chain[0]) if chain else None
    return sorted(chain, key=lambda m: (is_local.get(m) != first_local, rank.get(m, n)))


@dataclass(frozen=True, slots=True)
class PinCandidate:
    """What the pin filter needs to know about one model of the running router."""

    id: str
    configured: bool
    is_local: bool
    supports_vision: bool
    supports_tools: bool


def usable_pins(
    prefer: Sequence[str],
    candidates: Mapping[str, PinCandidate],
    *,
    needs_vision: bool,
    needs_tools: bool,
    only_local: bool | None = None,
) -> list[str]:
    """The preferred ids that can serve this request: known, configured, able to.

    The router would refuse a pinned model it has no key for, and a text-only model cannot read
    an image: a preference that cannot work is dropped so the automatic chain serves instead.
    """
    out = []
    for mid in dict.fromkeys(prefer):
        c = candidates.get(mid)
        if c is None or not c.configured:
            continue
        if (needs_vision and not c.supports_vision) or (needs_tools and not c.supports_tools):
            continue
        if only_local is not None and c.is_local is not only_local:
            continue
        out.append(mid)
    return out


def merge_chain(pins: Sequence[str], chain: Sequence[str]) -> list[str]:
    """Pins first, then the router's chain without repeats."""
    return list(dict.fromkeys([*pins, *chain]))
