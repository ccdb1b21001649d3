"""Request text extraction and the hand-made features of the difficulty scorer.

Shared by `intent` and `difficulty` so both read a request the same way. Everything here is a
pure function of the request; regexes are compiled once at import because these run on every
routed request.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from math import log1p
from typing import Any, TypeAlias

from wilton_core.core.messages import has_images, message_texts

__all__ = [
    "HAND_FEATURE_NAMES",
    "MessagesOrText",
    "extract",
    "extract_words",
    "flatten_request",
    "hand_features",
    "has_image",
    "ngram_keys",
]

MessagesOrText: TypeAlias = str | Sequence[Mapping[str, Any]]

_DATA_IMAGE = re.compile(r"data:image/[a-z0-9.+-]+;base64,", re.I)

# Long prompts are scored from their head and tail: the cost stays flat and the parts that
# carry the question (instructions first, the actual ask last) are kept.
_MAX_SCAN_CHARS = 1000
_MAX_WORDS = 400

# Keyword tests are set lookups over one tokenisation, not regex alternations: a regex with a
# long alternation is retried at every character and costs tens of microseconds per prompt.
def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Latin letters with the accents of pt/fr/es: explicit ranges match ~2x faster than [^\W\d_].
_WORD = re.compile(r"[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F]+")
_NUM = re.compile(r"\d+(?:[.,]\d+)?")
_MATH_CHARS = re.compile(r"[=+*/^√∑∫<>≤≥±×÷]")
_MATH_WORDS = frozenset({"sqrt", "log", "ln", "frac", "sin", "cos", "tan", "lim", "integral", "derivative"})
_OPT = re.compile(r"(?m)^\s*[A-Da-d][.)]\s*(.*)$")
_NEG = _wordset(
    "not no never none except false incorrect least neither nor cannot não nunca nenhum nenhuma "
    "exceto ne pas jamais aucun aucune sauf nada ninguno ninguna excepto"
)
_STEP = _wordset(
    "step steps then first second prove proof derive calculate compute solve show explain why "
    "justify analyze analyse compare evaluate estimate determine if passo passos demonstre prove "
    "calcule resolva explique porque étape étapes démontrer démontrez démontre calculer calculez "
    "résous résoudre pourquoi paso pasos demuestra calcula resuelve explica si se"
)
_PRON = _wordset("i me my mine myself eu meu minha je moi mon ma yo mi")
_JUDGE = _wordset(
    "best most least likely true false correct wrong morally ethical should appropriate probably valid"
)
_WHICH_PHRASES = ("which of the following", "qual das seguintes", "qual dos seguintes",
                  "lequel des suivants", "laquelle des suivantes", "cuál de los siguientes")
_CODE_WORDS = frozenset({"def", "return", "function", "include", "lambda", "const", "println", "printf"})

# word -> which of the keyword sets above hold it (a word may be in several: "least", "false")
_KEYWORD_SET_LIST = (_NEG, _STEP, _PRON, _JUDGE, _MATH_WORDS, _CODE_WORDS)
_N_KEYWORD_SETS = len(_KEYWORD_SET_LIST)
_KEYWORD_SETS: dict[str, tuple[int, ...]] = {
    w: tuple(i for i, ws in enumerate(_KEYWORD_SET_LIST) if w in ws) for w in frozenset().union(*_KEYWORD_SET_LIST)
}
_NINE = 9

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


def flatten_request(messages_or_text: MessagesOrText) -> str:
    """The request's text: the string itself, or every message's text parts joined by newlines.

    Images and other non-text parts are skipped; `has_image` reports them (core/messages.py reads
    messages one way for every layer).
    """
    if isinstance(messages_or_text, str):
        return messages_or_text
    return "\n".join(message_texts(messages_or_text))


def has_image(messages_or_text: MessagesOrText) -> bool:
    """True when any message carries an image part, or any text embeds an image data URL."""
    if isinstance(messages_or_text, str):
        return _DATA_IMAGE.search(messages_or_text) is not None
    return has_images(messages_or_text)


def _clip(text: str) -> str:
    if len(text) <= _MAX_SCAN_CHARS:
        return text
    half = _MAX_SCAN_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def _keys(lower_words: list[str]) -> set[str]:
    words = lower_words
    if len(words) > _MAX_WORDS:
        half = _MAX_WORDS // 2
        words = words[:half] + words[-half:]
    keys = set(words)
    # map over a C method instead of a generator of f-strings: about 2x faster on long prompts
    keys.update(map(" ".join, itertools.pairwise(words)))
    return keys


def ngram_keys(text: str) -> set[str]:
    """Lower-cased word unigrams and bigrams (the learned part's vocabulary keys)."""
    return _keys(_WORD.findall(_clip(text).lower()))


def hand_features(text: str) -> list[float]:
    """Structure signals, each scaled to roughly [0, 3], in `HAND_FEATURE_NAMES` order."""
    return extract(text)[1]


def extract(text: str) -> tuple[set[str], list[float]]:
    """`(ngram_keys(text), hand_features(text))` from one tokenisation: the scorer's hot path."""
    _, keys, feats = extract_words(text)
    return keys, feats


def extract_words(text: str) -> tuple[list[str], set[str], list[float]]:
    """`extract` plus the lower-cased words it read (head and tail of long prompts)."""
    n_chars = len(text)
    t = _clip(text)
    words = _WORD.findall(t)
    low = " ".join(words).lower().split()
    n_words = len(low)
    # The per-word counts run as C-level map/filter/compress passes; Python only loops over
    # the few words that can matter (keyword hits, words with an upper-case letter).
    lengths = list(map(len, words))
    word_chars = sum(lengths)
    long_words = sum(map(_NINE.__le__, lengths))
    # Capitalised = title-case words of 2+ letters, counted in C: among the words with an
    # upper-case letter, the title-case ones minus the single capitals ("A", "I").
    upper = list(itertools.compress(words, map(str.__ne__, words, low)))
    capitalised = sum(map(str.istitle, upper)) - sum(map((1).__eq__, map(len, upper)))
    hits = [0] * _N_KEYWORD_SETS
    for lw in filter(_KEYWORD_SETS.__contains__, low):
        for i in _KEYWORD_SETS[lw]:
            hits[i] += 1
    neg, step, pron, judge, math_words, code_words = hits
    neg += t.count("n't")
    nums = _NUM.findall(t)
    opt_matches = list(_OPT.finditer(t))
    opts = [m.group(1) for m in opt_matches]
    stem_chars = opt_matches[0].start() if opt_matches else len(t)
    log_len = math.log1p(n_chars)
    t_low = t.lower()
    feats = [
        log_len / 8,
        log1p(n_words) / 6,
        log1p(len(nums)) / 3,
        log1p(len(_MATH_CHARS.findall(t)) + math_words) / 3,
        1.0 if len(opts) >= 2 else 0.0,
        log1p(sum(map(len, opts)) / len(opts)) / 5 if opts else 0.0,
        log1p(neg) / 2,
        log1p(t.count("?")) / 2,
        log1p(step) / 2,
        log1p(t.count("\n")) / 3,
        word_chars / n_words / 8 if n_words else 0.0,
        long_words / n_words if n_words else 0.0,
    ]
    feats.extend([1.0 if lo <= log_len < hi else 0.0 for lo, hi in _LENGTH_BINS])
    feats.extend(
        [
            log1p(t.count("|")) / 2,
            log1p(pron) / 2,
            log1p(judge) / 2,
            capitalised / max(1, n_words),
            sum(map(len, nums)) / max(1, len(t)) * 10,
            log1p(t.count('"') + t.count("“")) / 2,
            sum(1 for o in opts if "," in o) / len(opts) if opts else 0.0,
            stem_chars / max(1, len(t)),
            1.0 if any(p in t_low for p in _WHICH_PHRASES) else 0.0,
            log1p(t.count("```") + t.count("{") + t.count(";") + code_words) / 2,
        ]
    )
    return low, _keys(low), feats
