"""Difficulty: how much a request stands to gain from the API tier, as a number in [0, 1].

The scorer is two small logistic regressions trained offline on labelled routing data
(`tools/train_difficulty.py`) and shipped as `wilton_core/data/difficulty.npz`:

    p_strong = P(strong model answers correctly | request)
    p_weak   = P(weak/local model answers correctly | request)
    score    = (1 + p_strong - p_weak) / 2

    score    = sigmoid(logit((1 + p_strong - p_weak) / 2) + priors)

so the score orders requests by the expected quality gained by sending them to the API tier,
which is what the selector needs when it sends the hardest `1 - phi` share there. Each head
sees the same inputs: binary word unigram/bigram presence (normalised by 1/sqrt(#keys)) and
the hand features of `features.py`.

`priors` are hand-set log-odds for what the training data (MMLU multiple choice) cannot teach,
because it has no such prompts: the intent (local models are weaker on code and images;
internal commands are trivial), very short prompts (greetings, one-line questions: easy) and
explicit multi-step/proof requests (hard). They barely touch MMLU-like prompts, so the held-out
PGR is that of the learned part; they are listed in `explain()`.

Scoring is pure Python over two dicts: numpy is only used to read the artefact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from wilton_core.core.features import (
    HAND_FEATURE_NAMES,
    MessagesOrText,
    extract,
    flatten_request,
)
from wilton_core.core.intent import Intent, detect_intent

__all__ = [
    "ARTEFACT_NAME",
    "DEFAULT_INTENT_PRIOR",
    "DifficultyScorer",
    "explain_difficulty",
    "load_default_scorer",
    "prior_log_odds",
    "score_difficulty",
]

ARTEFACT_NAME = "difficulty.npz"

# Offsets on the score's log-odds (positive = harder).
DEFAULT_INTENT_PRIOR: Mapping[Intent, float] = {
    Intent.CHAT: 0.0,
    Intent.CODE: 0.5,
    Intent.VISION: 0.5,
    Intent.SYSTEM: -4.0,
}
SHORT_PROMPT_CHARS = 80
_PRIOR_SCAN_CHARS = 1000
SHORT_PROMPT_PRIOR = -3.0  # at 0 chars, fading linearly to 0 at SHORT_PROMPT_CHARS
REASONING_PRIOR = 1.0  # per distinct explicit multi-step phrase, at most 2 of them
_REASONING_PHRASES: tuple[str, ...] = (
    "step by step", "step-by-step", "prove that", "prove the", "derive ", "show that",
    "show your work", "show your reasoning", "justify each", "passo a passo", "demonstre",
    "prove que", "justifique", "étape par étape", "démontre", "démontrez", "justifiez",
    "paso a paso", "demuestra", "demuestre", "justifica",
)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))


def prior_log_odds(text: str, intent: Intent, intent_prior: Mapping[Intent, float]) -> dict[str, float]:
    """The hand-set priors for `text`, by name (pure; see the module docstring)."""
    shortness = 1.0 - len(text.strip()) / SHORT_PROMPT_CHARS
    short = SHORT_PROMPT_PRIOR * shortness if shortness > 0 else 0.0
    # Head and tail only, like the features: an explicit ask sits at either end of a long
    # prompt, and the cost stays flat however long the pasted material in between is.
    low = (text if len(text) <= 2 * _PRIOR_SCAN_CHARS else text[:_PRIOR_SCAN_CHARS] + "\n"
           + text[-_PRIOR_SCAN_CHARS:]).lower()
    hits = sum(1 for phrase in _REASONING_PHRASES if phrase in low)
    return {
        "intent": intent_prior.get(intent, 0.0),
        "short_prompt": short,
        "reasoning_request": REASONING_PRIOR * min(hits, 2),
    }


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class DifficultyScorer:
    """A loaded difficulty model. Build once (`load_default_scorer()` or `from_npz`), pass around.

    vocab maps an n-gram key to its (strong-head, weak-head) weight.
    """

    vocab: Mapping[str, tuple[float, float]]
    hand_strong: tuple[float, ...]
    hand_weak: tuple[float, ...]
    bias_strong: float
    bias_weak: float
    intent_prior: Mapping[Intent, float] = field(default_factory=lambda: dict(DEFAULT_INTENT_PRIOR))
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(HAND_FEATURE_NAMES)
        if len(self.hand_strong) != n or len(self.hand_weak) != n:
            raise ValueError(
                f"difficulty model has {len(self.hand_strong)}/{len(self.hand_weak)} hand weights,"
                f" the code computes {n} features: retrain with tools/train_difficulty.py"
            )

    # -- scoring ---------------------------------------------------------------------------

    def _logits(self, text: str, intent: Intent) -> tuple[float, float]:
        keys, values = extract(text)
        zs = self.bias_strong
        zw = self.bias_weak
        if keys:
            norm = 1.0 / math.sqrt(len(keys))
            ws = ww = 0.0
            # Only the keys the model knows reach the Python loop (filter/map run in C).
            for ps, pw in filter(None, map(self.vocab.get, keys)):
                ws += ps
                ww += pw
            zs += ws * norm
            zw += ww * norm
        for x, a, b in zip(values, self.hand_strong, self.hand_weak, strict=True):
            zs += a * x
            zw += b * x
        return zs, zw

    def score(self, messages_or_text: MessagesOrText, intent: Intent | None = None) -> float:
        """Difficulty in [0, 1]; higher = more to gain from the API tier. Deterministic."""
        text = flatten_request(messages_or_text)
        if intent is None:
            intent = detect_intent(messages_or_text)
        zs, zw = self._logits(text, intent)
        return self._combine(zs, zw, prior_log_odds(text, intent, self.intent_prior))[1]

    @staticmethod
    def _combine(zs: float, zw: float, priors: Mapping[str, float]) -> tuple[float, float]:
        learned = (1.0 + _sigmoid(zs) - _sigmoid(zw)) / 2.0
        return learned, _sigmoid(_logit(learned) + sum(priors.values()))

    def explain(self, messages_or_text: MessagesOrText, intent: Intent | None = None) -> dict[str, Any]:
        """The score, its two heads, the priors, and every feature's value and contributions.

        For features and n-grams, `strong`/`weak` are the contributions to each head's log-odds
        and `contribution` = strong - weak: positive pushes towards "hard". `priors` are added
        to the log-odds of `learned_score` to give `score`.
        """
        text = flatten_request(messages_or_text)
        if intent is None:
            intent = detect_intent(messages_or_text)
        zs, zw = self._logits(text, intent)
        keys, values = extract(text)
        features: list[dict[str, Any]] = []
        for name, x, a, b in zip(HAND_FEATURE_NAMES, values, self.hand_strong, self.hand_weak, strict=True):
            features.append(
                {"name": name, "value": x, "strong": a * x, "weak": b * x, "contribution": (a - b) * x}
            )
        norm = 1.0 / math.sqrt(len(keys)) if keys else 0.0
        ngrams: list[dict[str, Any]] = []
        for key in sorted(keys):
            pair = self.vocab.get(key)
            if pair is not None:
                ngrams.append({"name": key, "value": norm, "strong": pair[0] * norm,
                               "weak": pair[1] * norm, "contribution": (pair[0] - pair[1]) * norm})
        ngrams.sort(key=lambda f: -abs(f["contribution"]))
        priors = prior_log_odds(text, intent, self.intent_prior)
        learned, score = self._combine(zs, zw, priors)
        p_strong, p_weak = _sigmoid(zs), _sigmoid(zw)
        return {
            "score": score,
            "learned_score": learned,
            "intent": intent.value,
            "p_strong": p_strong,
            "p_weak": p_weak,
            "logit_strong": zs,
            "logit_weak": zw,
            "bias": {"strong": self.bias_strong, "weak": self.bias_weak,
                     "contribution": self.bias_strong - self.bias_weak},
            "priors": priors,
            "features": features,
            "ngrams": ngrams[:20],
            "ngrams_matched": len(ngrams),
            "model": dict(self.metadata),
        }

    # -- artefact --------------------------------------------------------------------------

    @classmethod
    def from_npz(cls, path: str | Path) -> DifficultyScorer:
        import numpy as np  # only needed to read the artefact

        with np.load(path, allow_pickle=False) as z:
            names = tuple(str(s) for s in z["hand_names"])
            if names != HAND_FEATURE_NAMES:
                raise ValueError(
                    f"{path}: the artefact's hand features {names} differ from the code's; retrain"
                    " with tools/train_difficulty.py"
                )
            keys = [str(s) for s in z["vocab"]]
            ws = z["vocab_strong"].astype(float).tolist()
            ww = z["vocab_weak"].astype(float).tolist()
            hs = z["hand_strong"].astype(float).tolist()
            hw = z["hand_weak"].astype(float).tolist()
            bias = z["bias"].astype(float).tolist()
            metadata = json.loads(str(z["metadata"]))
        return cls(
            vocab=dict(zip(keys, zip(ws, ww, strict=True), strict=True)),
            hand_strong=tuple(hs),
            hand_weak=tuple(hw),
            bias_strong=bias[0],
            bias_weak=bias[1],
            metadata=metadata,
        )

    def save_npz(self, path: str | Path) -> None:
        import numpy as np

        keys = sorted(self.vocab)
        np.savez_compressed(
            path,
            hand_names=np.array(HAND_FEATURE_NAMES),
            vocab=np.array(keys, dtype=str),
            vocab_strong=np.array([self.vocab[k][0] for k in keys], dtype=np.float32),
            vocab_weak=np.array([self.vocab[k][1] for k in keys], dtype=np.float32),
            hand_strong=np.array(self.hand_strong, dtype=np.float64),
            hand_weak=np.array(self.hand_weak, dtype=np.float64),
            bias=np.array([self.bias_strong, self.bias_weak], dtype=np.float64),
            metadata=np.array(json.dumps(dict(self.metadata), sort_keys=True)),
        )


@lru_cache(maxsize=1)
def load_default_scorer() -> DifficultyScorer:
    """The scorer shipped with the package, read once per process."""
    ref = resources.files("wilton_core.data").joinpath(ARTEFACT_NAME)
    with resources.as_file(ref) as path:
        return DifficultyScorer.from_npz(path)


def score_difficulty(messages_or_text: MessagesOrText, scorer: DifficultyScorer | None = None) -> float:
    """Difficulty in [0, 1] of a string or an OpenAI `messages` list (the shipped scorer by default)."""
    return (scorer or load_default_scorer()).score(messages_or_text)


def explain_difficulty(
    messages_or_text: MessagesOrText, scorer: DifficultyScorer | None = None
) -> dict[str, Any]:
    """`DifficultyScorer.explain` with the shipped scorer by default."""
    return (scorer or load_default_scorer()).explain(messages_or_text)


