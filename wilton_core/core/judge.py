"""The judge's words, pure: the prompt that asks it to score two answers, and the reading of its verdict.

The two answers are shown as A and B in an order the caller draws (position bias is real: judges
favour the first answer), and the verdict must be one JSON object `{"A": x, "B": y}` with both
scores in [0, 1]. Anything else is no verdict: a label is better missing than made up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import orjson

__all__ = ["JUDGE_SYSTEM", "Verdict", "judge_messages", "parse_verdict"]

# what the judge reads is bounded: a long conversation keeps its head and its tail
MAX_PROMPT_CHARS = 12_000
MAX_ANSWER_CHARS = 8_000
MAX_VERDICT_CHARS = 4_000

JUDGE_SYSTEM = (
    "You are a strict grader of AI assistant answers. You get a conversation and two candidate "
    "answers to its last user message, labelled A and B. Judge each answer on its own merits: "
    "correctness first, then whether it does what was asked, then clarity. Length and the order "
    "of the answers must not influence you. Reply with one JSON object and nothing else: "
    '{"A": <score of answer A>, "B": <score of answer B>}, each score a number from 0 (wrong or '
    "useless) to 1 (fully correct and helpful)."
)

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.I)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters left out ...]\n{text[-half:]}"


def judge_messages(conversation: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The chat messages sent to the judge model (OpenAI shape)."""
    user = (f"<conversation>\n{_clip(conversation, MAX_PROMPT_CHARS)}\n</conversation>\n\n"
            f"<answer_A>\n{_clip(answer_a, MAX_ANSWER_CHARS)}\n</answer_A>\n\n"
            f"<answer_B>\n{_clip(answer_b, MAX_ANSWER_CHARS)}\n</answer_B>\n\n"
            'Scores as JSON: {"A": ..., "B": ...}')
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


@dataclass(frozen=True, slots=True)
class Verdict:
    a: float
    b: float


def _score(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) and 0.0 <= v <= 1.0 else None


def parse_verdict(text: str) -> Verdict | None:
    """The judge's scores, or None when its reply is not exactly the asked-for JSON object (a code
    fence around it is tolerated; prose, other keys' absence, out-of-range or non-numeric scores are not)."""
    if not isinstance(text, str) or len(text) > MAX_VERDICT_CHARS:
        return None
    raw = _FENCE.sub("", text.strip())
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    keys = {str(k).strip().upper(): v for k, v in obj.items()}
    a, b = _score(keys.get("A")), _score(keys.get("B"))
    if a is None or b is None:
        return None
    return Verdict(a, b)
