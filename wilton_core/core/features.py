"""Request text extraction and the hand-made features of the difficulty scorer.

Shared by `intent` and `difficulty` so both read a request the same way. Everything here is a
pure function of the request; regexes are compiled once at import because these run on every
routed request.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

__all__ = [
    "HAND_FEATURE_NAMES",
    "MessagesOrText",
    "flatten_request",
    "hand_features",
    "has_image",
    "ngram_keys",
]

MessagesOrText: TypeAlias = str | Sequence[Mapping[str, Any]]

_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})
_DATA_IMAGE = re.compile(r"data:image/[a-z0-9.+-]+;base64,", re.I)

# Long prompts are scored from their head and tail: the cost stays flat and the parts that
# carry the question (instructions first, the actual ask last) are kept.
_MAX_SCAN_CHARS = 6000
_MAX_WORDS = 400

_WORD = re.compile(r"[^\W\d_]{2,}")
_NUM = re.compile(r"\d+(?:[.,]\d+)?")
_MATH = re.compile(r"[=+*/^√∑∫<>≤≥±×÷]|\\frac|\bsqrt\b|\blog\b")
_OPT = re.compile(r"(?m)^\s*[A-Da-d][.)]\s*(.*)$")
_NEG = re.compile(
    r"\b(?:not|no|never|none|except|false|incorrect|least|neither|nor|cannot|não|nunca|nenhum|"
    r"exceto|ne|pas|jamais|aucun|sauf|nada|ninguno|excepto)\b|n't",
    re.I,
)
_STEP = re.compile(
    r"\b(?:step|then|first|second|prove|proof|derive|calculate|compute|solve|show that|explain|why|"
    r"justify|analy[sz]e|compare|evaluate|estimate|determine|if|passo|prove|demonstre|calcule|"
    r"resolva|explique|porque|por que|étape|démontre[rz]?|calcule[rz]?|résous|résoudre|pourquoi|"
    r"paso|demuestra|calcula|resuelve|explica|si|se)\b",
    re.I,
)
_PRON = re.compile(r"\b(?:i|me|my|mine|myself|eu|meu|minha|je|moi|mon|ma|yo|mi)\b", re.I)
_JUDGE = re.compile(
    r"\b(?:best|most|least|likely|true|false|correct|wrong|morally|ethical|should|appropriate|"
    r"probably|valid)\b",
    re.I,
)
_CAP = re.compile(r"\b[A-Z][a-z]+")
_WHICH = re.compile(r"which of the following|qual (?:das|dos) seguintes|lequel des suivants|cuál de los siguientes", re.I)
_CODE = re.compile(r"```|\bdef \w+\(|\bclass \w+[:(]|\bfunction\b|[{};]\s*$|\breturn\b|#include", re.I | re.M)

_LENGTH_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 4.0), (4.0, 5.0), (5.0, 5.5), (5.5, 6.0), (6.0, 6.5), (6.5, 7.0), (7.0, math.inf),
)

HAND_FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "numbers",
    "math_symbols",
    "has_options",
    "option_length",
    "negations",
    "question_marks",
    "multi_step_words",
    "newlines",
    "mean_word_length",
    "long_word_share",
    *(f"length_bin_{i}" for i in range(len(_LENGTH_BINS))),
    "pipes",
    "first_person",
    "judgement_words",
    "capitalised_share",
    "digit_share",
    "quotes",
    "paired_options",
    "stem_share",
    "which_of_following",
    "code_syntax",
)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping):
        text = part.get("text")
        if isinstance(text, str):
            return text
    return ""


def _content_texts(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, Sequence):
        for part in content:
            text = _part_text(part)
            if text:
                yield text


def flatten_request(messages_or_text: MessagesOrText) -> str:
    """The request's text: the string itself, or every message's text parts joined by newlines.

    Images and other non-text parts are skipped; `has_image` reports them.
    """
    if isinstance(messages_or_text, str):
        return messages_or_text
    texts: list[str] = []
    for message in messages_or_text:
        if isinstance(message, Mapping):
            texts.extend(_content_texts(message.get("content")))
    return "\n".join(texts)


def has_image(messages_or_text: MessagesOrText) -> bool:
    """True when any message carries an image part, or any text embeds an image data URL."""
    if isinstance(messages_or_text, str):
        return _DATA_IMAGE.search(messages_or_text) is not None
    for message in messages_or_text:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
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


def _clip(text: str) -> str:
    if len(text) <= _MAX_SCAN_CHARS:
        return text
    half = _MAX_SCAN_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def ngram_keys(text: str) -> set[str]:
    """Lower-cased word unigrams and bigrams (the learned part's vocabulary keys)."""
    words = _WORD.findall(_clip(text).lower())
    if len(words) > _MAX_WORDS:
        half = _MAX_WORDS // 2
        words = words[:half] + words[-half:]
    keys = set(words)
    keys.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    return keys


def _log(x: float, scale: float) -> float:
    return math.log1p(x) / scale


def hand_features(text: str) -> list[float]:
    """Structure signals, each scaled to roughly [0, 3], in `HAND_FEATURE_NAMES` order."""
    n_chars = len(text)
    t = _clip(text)
    words = _WORD.findall(t)
    n_words = len(words)
    opts = _OPT.findall(t)
    stem_chars = len(_OPT.split(t, maxsplit=1)[0]) if opts else len(t)
    log_len = math.log1p(n_chars)
    word_chars = sum(map(len, words))
    digits = sum(c.isdigit() for c in t)
    feats = [
        log_len / 8,
        _log(n_words, 6),
        _log(len(_NUM.findall(t)), 3),
        _log(len(_MATH.findall(t)), 3),
        1.0 if len(opts) >= 2 else 0.0,
        _log(sum(map(len, opts)) / len(opts), 5) if opts else 0.0,
        _log(len(_NEG.findall(t)), 2),
        _log(t.count("?"), 2),
        _log(len(_STEP.findall(t)), 2),
        _log(t.count("\n"), 3),
        word_chars / n_words / 8 if n_words else 0.0,
        sum(len(w) >= 9 for w in words) / n_words if n_words else 0.0,
    ]
    feats.extend(1.0 if lo <= log_len < hi else 0.0 for lo, hi in _LENGTH_BINS)
    feats.extend(
        [
            _log(t.count("|"), 2),
            _log(len(_PRON.findall(t)), 2),
            _log(len(_JUDGE.findall(t)), 2),
            len(_CAP.findall(t)) / max(1, n_words),
            digits / max(1, len(t)) * 10,
            _log(t.count('"') + t.count("“"), 2),
            sum(1 for o in opts if "," in o) / len(opts) if opts else 0.0,
            stem_chars / max(1, len(t)),
            1.0 if _WHICH.search(t) else 0.0,
            _log(len(_CODE.findall(t)), 2),
        ]
    )
    return feats
