"""A synthetic workload whose weak-model failures follow a hidden rule (issue 16 §2 simulation).

Customer-review sentiment questions about a product named in the prompt. The local (weak) model
gets the answer wrong, most of the time, exactly when the product is an animal; the API (strong)
model is almost always right. Nothing in the shipped scorer knows that rule (it was trained on
MMLU, where pets and vehicles say nothing about difficulty), and the prompts of both groups have
the same length and layout, so it routes this workload at random level (PGR@25% about 0.25,
bench/learning_curve.py). A scorer that learns from labels can find the rule in the words.

Everything is deterministic: outcomes are drawn from a hash of the prompt, so the fake upstream
that answers, the checker that scores the answer and the test set agree without shared state.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["EASY_ITEMS", "HARD_ITEMS", "Task", "answer_text", "is_hard", "judge_reply", "tasks", "unit_hash"]

HARD_ITEMS = ("dog", "cat", "horse", "rabbit", "parrot", "hamster", "goldfish", "turtle", "pony", "puppy",
              "kitten", "lizard")
EASY_ITEMS = ("bicycle", "car", "scooter", "truck", "motorcycle", "tractor", "van", "boat", "skateboard", "wagon",
              "trailer", "canoe")
_POSITIVE = (
    "I love it, it works perfectly every day.", "Best purchase this year, we are very happy with it.",
    "It exceeded every expectation we had.", "Great value, I would buy it again.",
    "My whole family enjoys it a lot.", "It arrived quickly and is wonderful.",
    "Absolutely delighted with it so far.", "It made our weekends much better.",
)
_NEGATIVE = (
    "It broke after two days and support ignored me.", "Terrible, I regret buying it.",
    "It is noisy and smells bad.", "Worst purchase ever, I want a refund.", "It stopped working within a week.",
    "Disappointing quality, not worth the money.", "It arrived damaged and dirty.", "I am returning it tomorrow.",
)
_FRAMES = (
    'Here is a customer review of their new {item}: "{s}" Is the review positive or negative? Answer with one word.',
    'Classify the sentiment of this note about a {item}: "{s}" Reply positive or negative.',
    'A buyer wrote about the {item} they got: "{s}" Was the buyer satisfied? Answer positive or negative.',
    'Sentiment check ({item} owner): "{s}" Positive or negative?',
)
WEAK_FAIL_HARD = 0.85  # P(local answer wrong) when the hidden feature holds
WEAK_FAIL_EASY = 0.10
STRONG_FAIL = 0.05


def unit_hash(key: str) -> float:
    """A stable number in [0, 1) for a string."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class Task:
    prompt: str
    item: str
    truth: str       # "positive" or "negative"
    weak_right: bool
    strong_right: bool

    @property
    def weak(self) -> float:
        return 1.0 if self.weak_right else 0.0

    @property
    def strong(self) -> float:
        return 1.0 if self.strong_right else 0.0


def is_hard(item: str) -> bool:
    return item in HARD_ITEMS


def tasks() -> list[Task]:
    """Every prompt of the family (24 items x 4 frames x 16 reviews = 1536), in a fixed order."""
    out = []
    for item in HARD_ITEMS + EASY_ITEMS:
        for frame in _FRAMES:
            for truth, pool in (("positive", _POSITIVE), ("negative", _NEGATIVE)):
                for s in pool:
                    p = frame.format(item=item, s=s)
                    weak_fail = WEAK_FAIL_HARD if is_hard(item) else WEAK_FAIL_EASY
                    out.append(Task(p, item, truth, unit_hash("weak|" + p) >= weak_fail,
                                    unit_hash("strong|" + p) >= STRONG_FAIL))
    return out


def answer_text(task: Task, local: bool) -> str:
    """What a model answers: the truth when it gets it right, the opposite when not."""
    right = task.weak_right if local else task.strong_right
    wrong = "negative" if task.truth == "positive" else "positive"
    return task.truth if right else wrong


# the judge prompt of core/judge.py: the conversation (core/messages.transcript, "role: text"
# lines) and the two answers in tags; the order A/B is drawn by the router, so it is read here
_JUDGED = re.compile(r"<conversation>\n(?P<conv>.*)\n</conversation>\s*<answer_A>\n(?P<a>.*)\n</answer_A>"
                     r"\s*<answer_B>\n(?P<b>.*)\n</answer_B>", re.S)


def judge_reply(by_prompt: Mapping[str, Task], judge_prompt: str) -> str:
    """A fake judge that follows the labels: each shown answer scored 1 when it is the task's
    truth, else 0, as the strict verdict JSON core/judge.py parses. A prompt it cannot read (or a
    task it does not know) gets prose, which the router must count as unparsable, not as a label."""
    m = _JUDGED.search(judge_prompt)
    if m is None:
        return "I cannot grade this."
    last_user = m["conv"].rsplit("user: ", 1)[-1] if "user: " in m["conv"] else ""
    task = by_prompt.get(last_user)
    if task is None:
        return "I do not know this task."

    def score(answer: str) -> float:
        return 1.0 if answer.strip().lower() == task.truth else 0.0

    return json.dumps({"A": score(m["a"]), "B": score(m["b"])})
