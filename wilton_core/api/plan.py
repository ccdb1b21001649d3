"""Which configured models an in-process call tries before the router's own chain (pure).

The seed's per-intent defaults (CHAT_LOCAL_MODEL=dolphin-mistral, CHAT_PROVIDER=local, ...) and
the config's `routing.intent_defaults` name a *local* model per intent. The library pins that
model first and appends the router's automatic chain after it, so a missing or broken local
model degrades to whatever the router can use instead of an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wilton_core.config import ModelConfig
from wilton_core.core.intent import Intent, IntentDefaults
from wilton_core.core.preferences import AUTO_MODELS, PinCandidate, merge_chain, usable_pins

__all__ = [
    "AUTO_NAMES",
    "PinCandidate",
    "coerce_intent",
    "merge_chain",
    "preferred_models",
    "resolve_model",
    "transient_ollama_model",
    "usable_pins",
]

# `model` values that ask the router to choose: never pinned (one definition, core/preferences.py)
AUTO_NAMES = AUTO_MODELS

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+-]")


def coerce_intent(intent: Intent | str) -> Intent:
    """Intent.CODE, "code" or "CODE" → Intent.CODE; a readable ValueError otherwise."""
    if isinstance(intent, Intent):
        return intent
    try:
        return Intent(str(intent).strip().lower())
    except ValueError:
        raise ValueError(
            f"unknown intent {intent!r}; use one of {', '.join(i.value for i in Intent)}"
        ) from None


def resolve_model(
    name: str, models: Iterable[ModelConfig], *, local_only: bool = False, provider_first: str = "ollama"
) -> str | None:
    """The configured model id that `name` means: an id, else a model whose upstream name it is.

    Among upstream-name matches, local models come first, then `provider_first` ones, so
    "dolphin-mistral" finds the Ollama model even when an API model shares the name.
    """
    ms = [m for m in models if m.is_local or not local_only]
    for m in ms:
        if m.id == name:
            return m.id
    matches = [m for m in ms if m.model == name]
    if not matches:
        return None
    matches.sort(key=lambda m: (not m.is_local, m.provider != provider_first))
    return matches[0].id


def preferred_models(
    intent: Intent,
    models: Sequence[ModelConfig],
    intent_defaults: Mapping[str, str],
    env: IntentDefaults,
    requested: str | None = None,
) -> list[str]:
    """Model ids to try first, in order: the requested model, then the intent's default local model.

    The default local model counts only when the intent's provider choice is "local" or "auto"
    (CHAT_PROVIDER=gemini says: do not hold chat on a local model). It comes from the config's
    `routing.intent_defaults` (an id; system falls back to chat's) and the seed's
    <INTENT>_LOCAL_MODEL (an id or an upstream model name). Names that match nothing are skipped.
    """
    by_id = {m.id: m for m in models}
    out: list[str] = []
    if requested and requested not in AUTO_NAMES:
        rid = resolve_model(requested, models)
        if rid:
            out.append(rid)
    if env.provider_for(intent) in ("local", "auto"):
        explicit = intent_defaults.get(intent.value)
        if explicit is None and intent is Intent.SYSTEM:
            explicit = intent_defaults.get(Intent.CHAT.value)
        if explicit and explicit in by_id and by_id[explicit].is_local:
            out.append(explicit)
        name = env.local_model_for(intent)
        if name:
            rid = resolve_model(name, models, local_only=True)
            if rid:
                out.append(rid)
    return list(dict.fromkeys(out))


def transient_ollama_model(name: str, host: str, *, timeout_s: float = 120.0) -> ModelConfig:
    """A model for an Ollama name no config declares, so `get_ollama_client()` can still call it.

    Its id is "ollama/<name>" (characters ids do not allow become "_"): that is what the ledger
    and the latency tracker record it under.
    """
    fields: dict[str, Any] = dict(
        id="ollama/" + _ID_UNSAFE.sub("_", name), provider="ollama", model=name, base_url=host,
        tier="selfhost", is_local=True, capability="standard", timeout_s=timeout_s,
    )
    return ModelConfig(**fields)
