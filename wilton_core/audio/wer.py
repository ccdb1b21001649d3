"""Word error rate: word-level edit distance over the reference length (pure, for tests and bench).

Both texts are normalised first, as Whisper evaluations do in spirit: lower case, punctuation
dropped, numbers 0-20 as words, a few British spellings as American ones, so "Set a timer for
10 minutes." matches "set a timer for ten minutes".
"""

from __future__ import annotations

import re

__all__ = ["normalise", "wer"]

_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
_SPELLING = {"colour": "color", "favourite": "favorite", "centre": "center", "metre": "meter",
             "organise": "organize", "realise": "realize", "grey": "gray"}
_WORD = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower().replace("-", " ")):
        w = w.strip("'")
        if w.isdigit() and int(w) < len(_NUMBERS):
            w = _NUMBERS[int(w)]
        out.append(_SPELLING.get(w, w))
    return [w for w in out if w]


def wer(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words in the reference; 0.0 for two empty texts."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)
