"""Difficulty: how much a request stands to gain from the API tier, as a number in [0, 1].

Two small logistic regressions trained offline on labelled routing data
(`tools/train_difficulty.py`, library in `difficulty_train.py`), shipped as
`wilton_core/data/difficulty.npz`:

    p_strong = P(strong model answers correctly | request)
    p_weak   = P(weak/local model answers correctly | request)
    learned  = (1 + p_strong - p_weak) / 2
    score    = sigmoid(logit(learned) + priors)

so the score orders requests by the expected quality gained by sending them to the API tier.
Each head reads the same inputs, all computed from one tokenisation of the request's head and
tail (`features.extract_words`):

* word unigrams/bigrams with TF-IDF weights (binary tf x idf, L2-normalised over the known keys);
* the hand features of `features.py` (length, options, negations, ...; the learned heads skip
  the numeric ones: `difficulty_train.TrainConfig.learned_exclude` sets their weights to 0);
* the mean static word vector of the request's words: a word -> vector table distilled offline
  from a sentence encoder (`tools/distill_word_vectors.py`, `word_vectors.npz`); only a table
  lookup runs here, no transformer.

**Out-of-distribution guard.** Each head has a *prior* twin that reads only length (which
transfers across workloads; the vocabulary does not). A request's similarity to the training
data — the mean cosine between its mean word vector and its k nearest training prompts
(a reference sample shipped in the artefact) — sets a trust `lam` in [0, 1]: 0 at or below the
training prompts' own `ood_lo` similarity, 1 from `ood_hi` on, linear between. The expected gains
of the learned heads and of the prior heads (`p_strong - p_weak`) are standardised by their
training mean and spread, blended as `lam * learned + (1 - lam) * prior` and mapped back to the
learned gain's scale (so `lam = 1` is exactly the learned score). Blending gains of equal spread,
rather than raw logits, matters: the learned heads are more confident, and a raw-logit blend lets
them dominate even at low trust.

`priors` are hand-set log-odds for what the training data (MMLU multiple choice) cannot teach:
the intent (local models are weaker on code and images; internal commands are trivial), very
short prompts (easy) and explicit multi-step/proof requests (hard). They are listed in
`explain()`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from wilton_core.core.features import (
    HAND_FEATURE_NAMES,
    MessagesOrText,
    extract_words,
    flatten_request,
)
from wilton_core.core.intent import Intent, detect_intent

__all__ = [
    "ARTEFACT_NAME",
    "DEFAULT_INTENT_PRIOR",
    "PRIOR_FEATURE_NAMES",
    "WORD_VECTORS_NAME",
    "DifficultyScorer",
    "RequestInputs",
    "WordVectors",
    "explain_difficulty",
    "load_default_scorer",
    "load_word_vectors",
    "prior_log_odds",
    "score_difficulty",
]

ARTEFACT_NAME = "difficulty.npz"
WORD_VECTORS_NAME = "word_vectors.npz"
FORMAT_VERSION = 2

Array = npt.NDArray[np.float64]
Array32 = npt.NDArray[np.float32]

# The prior heads read only length, which transfers across workloads (PGR 0.33-0.37 on every
# set we tried), unlike vocabulary or digit share. Adding layout features (newlines, question
# marks, length bins) made the fitted prior non-monotone and worse than random on unseen subjects.
PRIOR_FEATURE_NAMES: tuple[str, ...] = ("log_chars", "log_words")

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


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


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


@dataclass(frozen=True, slots=True)
class WordVectors:
    """word -> static vector. Row 0 of `table` is zeros: `index` maps a word to its row >= 1."""

    index: Mapping[str, int]
    table: Array
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> int:
        return int(self.table.shape[1])

    @classmethod
    def from_npz(cls, path: str | Path) -> WordVectors:
        with np.load(path, allow_pickle=False) as z:
            words = [str(w) for w in z["words"]]
            vectors = z["vectors"].astype(np.float64)
            metadata = json.loads(str(z["metadata"]))
        table = np.vstack([np.zeros((1, vectors.shape[1])), vectors])
        return cls(index={w: i + 1 for i, w in enumerate(words)}, table=table, metadata=metadata)

    def mean(self, words: set[str]) -> tuple[Array, float]:
        """Mean vector of the known words and the share of words that are known."""
        rows = list(filter(None, map(self.index.get, words)))
        if not rows:
            return np.zeros(self.table.shape[1]), 0.0
        return self.table[rows].mean(axis=0), len(rows) / len(words)


@dataclass(frozen=True, slots=True)
class RequestInputs:
    """Everything the heads read, from one pass over the request (see `DifficultyScorer.inputs`)."""

    keys: set[str]
    hand: Array
    vector: Array
    coverage: float


def _f64(a: Any) -> Array:
    return np.asarray(a, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class DifficultyScorer:
    """A loaded difficulty model. Build once (`load_default_scorer()` or `from_npz`), pass around.

    Arrays have one column per head (strong, weak). `vocab` maps an n-gram key to its row >= 1
    in `idf`/`w_ngram` (row 0 unused, so a lookup miss is falsy).
    """

    vocab: Mapping[str, int]
    idf: Array            # (K+1,)
    w_ngram: Array        # (K+1, 2)
    w_hand: Array         # (H, 2)
    w_vector: Array       # (V, 2)
    bias: Array           # (2,)
    w_prior: Array        # (H, 2), zero outside PRIOR_FEATURE_NAMES
    bias_prior: Array     # (2,)
    ood_ref: Array32      # (R, V) unit-norm mean word vectors of training prompts (float32: half the memory traffic)
    ood_k: int
    ood_lo: float
    ood_hi: float
    gain_stats: Array     # (4,) mean and spread of the learned gain, then of the prior gain
    vectors: WordVectors
    intent_prior: Mapping[Intent, float] = field(default_factory=lambda: dict(DEFAULT_INTENT_PRIOR))
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(HAND_FEATURE_NAMES)
        if self.w_hand.shape != (n, 2) or self.w_prior.shape != (n, 2):
            raise ValueError(
                f"difficulty model has {self.w_hand.shape[0]} hand weights, the code computes {n}"
                " features: retrain with tools/train_difficulty.py"
            )
        if self.w_vector.shape != (self.vectors.dims, 2):
            raise ValueError(
                f"difficulty model expects {self.w_vector.shape[0]}-dim word vectors, the table has"
                f" {self.vectors.dims}: retrain with tools/train_difficulty.py"
            )
        if len(self.idf) != len(self.vocab) + 1 or self.w_ngram.shape != (len(self.vocab) + 1, 2):
            raise ValueError("difficulty model: vocabulary and n-gram weights differ in size; retrain")

    # -- inputs and heads ------------------------------------------------------------------

    def inputs(self, text: str) -> RequestInputs:
        low, keys, hand = extract_words(text)
        vector, coverage = self.vectors.mean(set(low))
        return RequestInputs(keys=keys, hand=_f64(hand), vector=vector, coverage=coverage)

    def ngram_rows(self, keys: set[str]) -> list[int]:
        return list(filter(None, map(self.vocab.get, keys)))

    def ngram_logits(self, keys: set[str]) -> Array:
        rows = self.ngram_rows(keys)
        if not rows:
            return np.zeros(2)
        idf = self.idf[rows]
        return _f64(idf @ self.w_ngram[rows] / math.sqrt(float(idf @ idf)))

    def similarity(self, vector: Array) -> float:
        """Mean cosine to the k most similar training prompts (0 for an unknown vocabulary)."""
        norm = float(np.sqrt(vector @ vector))
        if norm == 0.0 or len(self.ood_ref) == 0:
            return 0.0
        sims = self.ood_ref @ (vector / norm).astype(np.float32)
        k = min(self.ood_k, len(sims))
        return float(np.partition(sims, len(sims) - k)[-k:].astype(np.float64).mean())

    def trust(self, similarity: float) -> float:
        """lam in [0, 1]: how much of the learned gain to keep at this similarity."""
        if similarity >= self.ood_hi:
            return 1.0
        if similarity <= self.ood_lo:
            return 0.0
        return (similarity - self.ood_lo) / (self.ood_hi - self.ood_lo)

    def _heads(self, x: RequestInputs) -> tuple[Array, Array, float, float]:
        learned = self.bias + x.hand @ self.w_hand + x.vector @ self.w_vector + self.ngram_logits(x.keys)
        prior = self.bias_prior + x.hand @ self.w_prior
        sim = self.similarity(x.vector)
        return learned, prior, sim, self.trust(sim)

    def _gain(self, learned: Array, prior: Array, lam: float) -> float:
        """Blend of the learned and prior expected gains (see the module docstring)."""
        g_learned = _sigmoid(float(learned[0])) - _sigmoid(float(learned[1]))
        if lam >= 1.0:
            return g_learned
        g_prior = _sigmoid(float(prior[0])) - _sigmoid(float(prior[1]))
        ml, sl, mp, sp = (float(v) for v in self.gain_stats)
        z = lam * (g_learned - ml) / sl + (1.0 - lam) * (g_prior - mp) / sp
        return min(max(ml + sl * z, -1.0), 1.0)

    # -- scoring ---------------------------------------------------------------------------

    def score(self, messages_or_text: MessagesOrText, intent: Intent | None = None) -> float:
        """Difficulty in [0, 1]; higher = more to gain from the API tier. Deterministic."""
        text = flatten_request(messages_or_text)
        if intent is None:
            intent = detect_intent(messages_or_text)
        learned, prior, _, lam = self._heads(self.inputs(text))
        return self._combine(self._gain(learned, prior, lam), prior_log_odds(text, intent, self.intent_prior))[1]

    @staticmethod
    def _combine(gain: float, priors: Mapping[str, float]) -> tuple[float, float]:
        learned = (1.0 + gain) / 2.0
        return learned, _sigmoid(_logit(learned) + sum(priors.values()))

    def explain(self, messages_or_text: MessagesOrText, intent: Intent | None = None) -> dict[str, Any]:
        """The score, its two heads, the OOD guard, the priors, and every input's contributions.

        For features, n-grams and the word vector, `strong`/`weak` are contributions to the
        learned heads' log-odds and `contribution` = strong - weak (positive pushes towards
        "hard"). `learned_score` = (1 + gain) / 2 where the gain blends the learned heads
        (`p_strong - p_weak`) and the length prior heads by `ood.trust`; `priors` are added to the
        log-odds of `learned_score` to give `score`.
        """
        text = flatten_request(messages_or_text)
        if intent is None:
            intent = detect_intent(messages_or_text)
        x = self.inputs(text)
        learned, prior, sim, lam = self._heads(x)
        features: list[dict[str, Any]] = []
        for name, v, (a, b) in zip(HAND_FEATURE_NAMES, x.hand.tolist(), self.w_hand.tolist(), strict=True):
            features.append({"name": name, "value": v, "strong": a * v, "weak": b * v, "contribution": (a - b) * v})
        rows = self.ngram_rows(x.keys)
        norm = math.sqrt(float(self.idf[rows] @ self.idf[rows])) if rows else 1.0
        by_row = {r: k for k, r in self.vocab.items() if r in set(rows)} if rows else {}
        ngrams: list[dict[str, Any]] = []
        for r in rows:
            v = float(self.idf[r]) / norm
            s, w = (float(c) * v for c in self.w_ngram[r])
            ngrams.append({"name": by_row[r], "value": v, "strong": s, "weak": w, "contribution": s - w})
        ngrams.sort(key=lambda f: (-abs(f["contribution"]), f["name"]))
        vs, vw = (float(c) for c in x.vector @ self.w_vector)
        priors = prior_log_odds(text, intent, self.intent_prior)
        learned_score, score = self._combine(self._gain(learned, prior, lam), priors)
        return {
            "score": score,
            "learned_score": learned_score,
            "intent": intent.value,
            "p_strong": _sigmoid(float(learned[0])),
            "p_weak": _sigmoid(float(learned[1])),
            "logit_strong": float(learned[0]),
            "logit_weak": float(learned[1]),
            "prior_logits": {"strong": float(prior[0]), "weak": float(prior[1])},
            "ood": {"similarity": sim, "trust": lam, "lo": self.ood_lo, "hi": self.ood_hi,
                    "vocabulary_coverage": x.coverage},
            "bias": {"strong": float(self.bias[0]), "weak": float(self.bias[1]),
                     "contribution": float(self.bias[0] - self.bias[1])},
            "word_vector": {"strong": vs, "weak": vw, "contribution": vs - vw},
            "priors": priors,
            "features": features,
            "ngrams": ngrams[:20],
            "ngram_total": {"strong": sum(f["strong"] for f in ngrams), "weak": sum(f["weak"] for f in ngrams)},
            "ngrams_matched": len(ngrams),
            "model": dict(self.metadata),
        }

    # -- artefact --------------------------------------------------------------------------

    @classmethod
    def from_npz(cls, path: str | Path | BinaryIO, vectors: WordVectors | None = None) -> DifficultyScorer:
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format_version"]) if "format_version" in z.files else 1
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: difficulty model format {version}, this code reads"
                                 f" {FORMAT_VERSION}: retrain with tools/train_difficulty.py")
            names = tuple(str(s) for s in z["hand_names"])
            if names != HAND_FEATURE_NAMES:
                raise ValueError(
                    f"{path}: the artefact's hand features {names} differ from the code's; retrain"
                    " with tools/train_difficulty.py"
                )
            keys = [str(s) for s in z["vocab"]]
            arrays = {k: z[k].astype(np.float64) for k in (
                "idf", "w_ngram", "w_hand", "w_vector", "bias", "w_prior", "bias_prior", "ood_range",
                "gain_stats")}
            ood_k = int(z["ood_k"])
            ood_ref = z["ood_ref"].astype(np.float32)
            metadata = json.loads(str(z["metadata"]))
        return cls(
            vocab={k: i + 1 for i, k in enumerate(keys)},
            idf=np.concatenate([[0.0], arrays["idf"]]),
            w_ngram=np.vstack([np.zeros((1, 2)), arrays["w_ngram"].reshape(-1, 2)]),
            w_hand=arrays["w_hand"], w_vector=arrays["w_vector"], bias=arrays["bias"],
            w_prior=arrays["w_prior"], bias_prior=arrays["bias_prior"],
            ood_ref=ood_ref, ood_k=ood_k, gain_stats=arrays["gain_stats"],
            ood_lo=float(arrays["ood_range"][0]), ood_hi=float(arrays["ood_range"][1]),
            vectors=vectors or load_word_vectors(), metadata=metadata,
        )

    def save_npz(self, path: str | Path | BinaryIO) -> None:
        keys = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(
            path,
            format_version=np.array(FORMAT_VERSION),
            hand_names=np.array(HAND_FEATURE_NAMES),
            vocab=np.array(keys, dtype=str),
            idf=self.idf[1:].astype(np.float32),
            w_ngram=self.w_ngram[1:].astype(np.float32),
            w_hand=self.w_hand, w_vector=self.w_vector, bias=self.bias,
            w_prior=self.w_prior, bias_prior=self.bias_prior,
            ood_ref=self.ood_ref.astype(np.float16), ood_k=np.array(self.ood_k),
            ood_range=np.array([self.ood_lo, self.ood_hi]), gain_stats=self.gain_stats,
            metadata=np.array(json.dumps(dict(self.metadata), sort_keys=True)),
        )


@lru_cache(maxsize=1)
def load_word_vectors() -> WordVectors:
    """The word vector table shipped with the package, read once per process."""
    ref = resources.files("wilton_core.data").joinpath(WORD_VECTORS_NAME)
    with resources.as_file(ref) as path:
        return WordVectors.from_npz(path)


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
