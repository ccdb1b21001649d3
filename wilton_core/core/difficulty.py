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
data — the max cosine between its mean word vector and 32 k-means centroids of the training
prompts' mean word vectors (shipped in the artefact) — sets a trust `lam` in [0, 1]: 0 at or
below the training prompts' own median similarity (`ood_lo`), 1 from their 95th percentile
(`ood_hi`) on, linear between. The expected gains of the learned heads and of the prior heads
(`p_strong - p_weak`) are standardised by their training mean and spread, blended as
`lam * learned + (1 - lam) * prior` and mapped back to the learned gain's scale (so `lam = 1` is
exactly the learned score). Blending gains of equal spread, rather than raw logits, matters: the
learned heads are more confident, and a raw-logit blend lets them dominate even at low trust.
The ramp is strict on purpose: on an MMLU field held out entirely the learned heads can rank
worse than random, and only this ramp kept every held-out field at or above the length prior
(docs/routing_quality.md).

**Request path.** At load the model is folded per key (`_Folded`): each n-gram or word maps to
one Python int packing fixed-point fields: its idf-weighted head weights, its word vector's
projections onto the heads (the mean vector enters the logits linearly), its dot products with
the OOD centroids and the raw vector (for the norm). Scoring is one dict lookup pass over the
request's keys, one C-level sum of their ints and a decode of the sum: no numpy call, which in
the router's event loop cost more than the arithmetic (see `_Folded`).

`priors` are hand-set log-odds for what the training data (MMLU multiple choice) cannot teach:
the intent (local models are weaker on code and images; internal commands are trivial), very
short prompts (easy) and explicit multi-step/proof requests (hard). They are listed in
`explain()`.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from operator import mul
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

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
    "Heads",
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
FORMAT_VERSION = 3

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
    "step by step", "step-by-step", "prove ", "derive ", "show that",
    "show your work", "show your reasoning", "justify each", "passo a passo", "demonstre",
    "prove que", "justifique", "étape par étape", "démontre", "démontrez", "justifiez",
    "paso a paso", "demuestra", "demuestre", "justifica",
)


def _starts_a_word(low: str, phrase: str) -> bool:
    """`phrase` occurs in `low` at the start of a word ("improve the" is not "prove the")."""
    i = low.find(phrase)
    while i >= 0:
        if i == 0 or not low[i - 1].isalnum():
            return True
        i = low.find(phrase, i + 1)
    return False


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
    short, reasoning = _text_priors(text)
    return {"intent": intent_prior.get(intent, 0.0), "short_prompt": short, "reasoning_request": reasoning}


def _text_priors(text: str) -> tuple[float, float]:
    """(short prompt, reasoning request) log-odds: `prior_log_odds` without building its dict."""
    # Head and tail only, like the features: an explicit ask sits at either end of a long
    # prompt, and the cost stays flat however long the pasted material in between is.
    low = (text if len(text) <= 2 * _PRIOR_SCAN_CHARS else text[:_PRIOR_SCAN_CHARS] + "\n"
           + text[-_PRIOR_SCAN_CHARS:]).lower()
    # the `in` tests run in C (filter); usually none matches and Python never loops
    hits = sum(1 for phrase in filter(low.__contains__, _REASONING_PHRASES) if _starts_a_word(low, phrase))
    # Short means easy ("hi", "what is 2+2?") unless it asks for a proof or a derivation:
    # "Prove Fermat's little theorem." is short and hard.
    shortness = 0.0 if hits else 1.0 - len(text.strip()) / SHORT_PROMPT_CHARS
    short = SHORT_PROMPT_PRIOR * shortness if shortness > 0 else 0.0
    return short, REASONING_PRIOR * min(hits, 2)


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

    def mean(self, keys: set[str]) -> tuple[Array, float]:
        """Mean vector of the known words among `keys` and the share of its words that are known.

        Bigram keys (with a space) are not words: never in the table, not counted.
        """
        words = {k for k in keys if " " not in k}
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


class Heads(NamedTuple):
    """One request's logits and OOD similarity, as `score` combines them (a tuple: cheap to make)."""

    strong: float        # learned heads' log-odds
    weak: float
    prior_strong: float  # length prior heads' log-odds
    prior_weak: float
    similarity: float    # max cosine of the mean word vector to the training centroids (0: no known word)


# Fields of a key's packed integer (see `_Folded`): six scalars, then the word vector's cosine
# numerators against each OOD centroid, then the raw word vector (for the norm).
_IDF2, _NG_S, _NG_W, _KNOWN, _VEC_S, _VEC_W = range(6)
_N_SCALAR_COLS = 6
_FIELD_BITS = 32
_MAGNITUDE = (1 << 21) - 1   # |quantised value| of one key's field
_MAX_KEYS_PER_SUM = (1 << (_FIELD_BITS - 1 - 21)) - 1  # 1023 fields of |x| < 2**21 sum to |s| < 2**31


@dataclass(frozen=True, slots=True)
class _Folded:
    """The model folded per key at load time, so `heads` is one lookup pass and one integer sum.

    Each known key (n-gram or word) is one Python int holding fixed-point fields of 32 bits:
    its idf^2, idf-weighted head weights, whether it has a word vector, that vector's projections
    onto the heads (the mean vector enters the logits linearly: w . mean(v) = mean(w . v)), its
    dot products with the OOD centroids and the raw vector (for the norm; cosine is scale-free,
    the sum serves as well as the mean). Adding the ints adds every field at once: the request
    path is dict lookups and C-level int additions, with no numpy call. That matters more than
    the instruction count suggests: in the router, between socket reads, each numpy call cost
    ~7 us of cold-cache dispatch and some released the GIL to the ledger writer's thread (the
    gateway benchmark and docs/benchmarks.md). Integer sums are also exact, so every replica
    gets the same score whatever the order of the keys.

    Quantisation: each field (each group, for the centroid products and the vector) is scaled
    so its largest absolute value in the model maps to 2**21 - 1: a relative resolution of 5e-7
    of that maximum, finer than the float32 table this replaced. Fields are signed: a key's int is
    sum(x_k * 2**(32k)) exactly, so adding ints adds fields, and up to 1023 keys keep every field
    sum within a signed 32-bit range. Decoding adds 2**31 to every field (all digits become
    unsigned), flips that bit back (`(s + half) ^ half`) and reads the bytes as signed 32-bit
    fields: the sums come out with no per-field Python arithmetic (a bias per key, as before,
    cost a subtraction per field per request). `_KNOWN` is 1 per word: it counts them.
    """

    packed: Mapping[str, int]          # key -> its fields as one int (signed fields, see above)
    n_bytes: int                       # bytes of all fields
    half: int                          # 2**31 in every field
    unpack: Callable[[bytes], tuple[int, ...]]  # bytes -> the fields (signed 32-bit, little-endian)
    n_centroids: int
    inv_scale: tuple[float, ...]       # one per scalar field
    cos_per_vec: float                 # vec scale / centroid-product scale: cosine from the raw sums
    hand_strong: tuple[float, ...]   # the learned heads' hand weights, all H features
    hand_weak: tuple[float, ...]
    prior_terms: tuple[tuple[int, float, float], ...]  # (feature, strong, weak) where the prior reads one
    bias: tuple[float, float, float, float]  # learned strong, weak, prior strong, weak
    gain_stats: tuple[float, float, float, float]

    def field_sums(self, found: list[int]) -> tuple[int, ...]:
        """Each field's sum over the keys' packed ints `found`.

        One C-level int sum per 1023 keys (the most whose fields stay within 32 signed bits);
        longer lists add their parts' decoded sums.
        """
        if len(found) <= _MAX_KEYS_PER_SUM:
            half = self.half
            return self.unpack(((sum(found) + half) ^ half).to_bytes(self.n_bytes, "little"))
        parts = [self.field_sums(found[i:i + _MAX_KEYS_PER_SUM]) for i in range(0, len(found), _MAX_KEYS_PER_SUM)]
        return tuple(sum(c) for c in zip(*parts, strict=True))


def _scale_for(m: float) -> float:
    return _MAGNITUDE / m if m > 0.0 else 1.0


_FOLD_CHUNK = 2048  # keys per block while packing: the temporaries stay ~2 MB, not the whole table's ~20


def _fold(vocab: Mapping[str, int], idf: Array, w_ngram: Array, vectors: WordVectors, w_vector: Array,
          w_hand: Array, w_prior: Array, bias: Array, bias_prior: Array, centroids: Array32,
          gain_stats: Array) -> _Folded:
    keys = sorted(set(vocab) | set(vectors.index))
    n_centroids, dims = centroids.shape
    c64 = centroids.astype(np.float64)
    ng_idf = idf[1:]
    ng = np.column_stack([ng_idf ** 2, ng_idf * w_ngram[1:, 0], ng_idf * w_ngram[1:, 1]])
    v_all = vectors.table[1:]
    # The scales: each field's (each group's) largest absolute value over the model, blockwise.
    vec_max = float(np.abs(v_all).max()) if len(v_all) else 0.0
    proj_max = np.zeros(2)
    cos_max = 0.0
    for i in range(0, len(v_all), _FOLD_CHUNK):
        block = v_all[i:i + _FOLD_CHUNK]
        proj_max = np.maximum(proj_max, np.abs(block @ w_vector).max(axis=0))
        cos_max = max(cos_max, float(np.abs(block @ c64.T).max()))
    ng_max = np.abs(ng).max(axis=0) if len(ng) else np.zeros(3)
    scales = [_scale_for(float(ng_max[0])), _scale_for(float(ng_max[1])), _scale_for(float(ng_max[2])),
              1.0,  # a word's _KNOWN field is exactly 1: the decoder counts words by it
              _scale_for(float(proj_max[0])), _scale_for(float(proj_max[1]))]
    cos_scale, vec_scale = _scale_for(cos_max), _scale_for(vec_max)
    n_fields = _N_SCALAR_COLS + n_centroids + dims
    half = sum(1 << (_FIELD_BITS * k + _FIELD_BITS - 1) for k in range(n_fields))  # 2**31 in every field
    packed: dict[str, int] = {}
    for i in range(0, len(keys), _FOLD_CHUNK):
        block_keys = keys[i:i + _FOLD_CHUNK]
        cols = np.zeros((len(block_keys), n_fields), dtype=np.float64)
        ng_at = [(j, vocab[k]) for j, k in enumerate(block_keys) if k in vocab]
        if ng_at:
            rows, src = zip(*ng_at, strict=True)
            cols[list(rows), :3] = ng[[r - 1 for r in src]]
        vec_at = [(j, vectors.index[k]) for j, k in enumerate(block_keys) if k in vectors.index]
        vec_rows: list[int] = []
        if vec_at:
            rows, src = zip(*vec_at, strict=True)
            vec_rows = list(rows)
            v = vectors.table[list(src)]
            cols[vec_rows, _KNOWN] = 1.0
            cols[vec_rows, _VEC_S:_VEC_W + 1] = v @ w_vector
            cols[vec_rows, _N_SCALAR_COLS:_N_SCALAR_COLS + n_centroids] = v @ c64.T
            cols[vec_rows, _N_SCALAR_COLS + n_centroids:] = v
        cols[:, :_N_SCALAR_COLS] *= scales
        cols[:, _N_SCALAR_COLS:_N_SCALAR_COLS + n_centroids] *= cos_scale
        cols[:, _N_SCALAR_COLS + n_centroids:] *= vec_scale
        if not np.isfinite(cols).all():  # NaN/inf would pack as garbage, silently
            raise ValueError("difficulty model has non-finite weights or vectors: retrain")
        q = np.rint(cols).astype(np.int64)
        if q.size and int(np.abs(q).max()) > _MAGNITUDE:
            raise ValueError("difficulty model: a folded field does not fit its fixed-point range")
        # sum(x_k * 2**(32k)) with signed x_k: pack x_k + 2**31 as unsigned digits, take 2**31 off each
        raw = (q + (1 << 31)).astype("<u4").tobytes()
        width = n_fields * (_FIELD_BITS // 8)
        for j, k in enumerate(block_keys):
            packed[k] = int.from_bytes(raw[j * width:(j + 1) * width], "little") - half
    b = [float(x) for x in (*bias, *bias_prior)]
    g = [float(x) for x in gain_stats]
    return _Folded(
        packed=packed, n_bytes=n_fields * (_FIELD_BITS // 8), half=half, unpack=struct.Struct(f"<{n_fields}i").unpack,
        n_centroids=n_centroids,
        inv_scale=tuple(1.0 / x for x in scales), cos_per_vec=vec_scale / cos_scale,
        hand_strong=tuple(w_hand[:, 0].tolist()), hand_weak=tuple(w_hand[:, 1].tolist()),
        prior_terms=tuple((i, float(w_prior[i, 0]), float(w_prior[i, 1]))
                          for i in range(len(w_prior)) if w_prior[i, 0] or w_prior[i, 1]),
        bias=(b[0], b[1], b[2], b[3]), gain_stats=(g[0], g[1], g[2], g[3]),
    )


def _f64(a: Any) -> Array:
    return np.asarray(a, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class DifficultyScorer:
    """A loaded difficulty model. Build once (`load_default_scorer()` or `from_npz`), pass around.

    Arrays have one column per head (strong, weak). `vocab` maps an n-gram key to its row >= 1
    in `idf`/`w_ngram` (row 0 unused, so a lookup miss is falsy). The request path reads only
    `_folded`, built from these at construction.
    """

    vocab: Mapping[str, int]
    idf: Array            # (K+1,)
    w_ngram: Array        # (K+1, 2)
    w_hand: Array         # (H, 2)
    w_vector: Array       # (V, 2)
    bias: Array           # (2,)
    w_prior: Array        # (H, 2), zero outside PRIOR_FEATURE_NAMES
    bias_prior: Array     # (2,)
    ood_centroids: Array32  # (C, V) unit-norm k-means centroids of the training prompts' mean word vectors
    ood_lo: float
    ood_hi: float
    gain_stats: Array     # (4,) mean and spread of the learned gain, then of the prior gain
    vectors: WordVectors
    intent_prior: Mapping[Intent, float] = field(default_factory=lambda: dict(DEFAULT_INTENT_PRIOR))
    metadata: Mapping[str, Any] = field(default_factory=dict)
    _folded: _Folded = field(init=False, repr=False, compare=False)

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
        if self.ood_centroids.ndim != 2 or self.ood_centroids.shape[1] != self.vectors.dims:
            raise ValueError("difficulty model: OOD centroids and word vectors differ in size; retrain")
        object.__setattr__(self, "_folded", _fold(
            self.vocab, self.idf, self.w_ngram, self.vectors, self.w_vector, self.w_hand, self.w_prior,
            self.bias, self.bias_prior, self.ood_centroids, self.gain_stats))

    # -- inputs and heads ------------------------------------------------------------------

    def inputs(self, text: str) -> RequestInputs:
        """The request's inputs, unfolded (for `explain` and training; `score` does not call it)."""
        _, keys, hand = extract_words(text)
        vector, coverage = self.vectors.mean(keys)
        return RequestInputs(keys=keys, hand=_f64(hand), vector=vector, coverage=coverage)

    def ngram_rows(self, keys: set[str]) -> list[int]:
        return list(filter(None, map(self.vocab.get, keys)))

    def heads(self, keys: set[str], hand: list[float]) -> Heads:
        """Logits of the four heads and the OOD similarity: one lookup pass over the keys.

        The request path: dict lookups, one C-level sum of the keys' packed ints (`_Folded`) and
        a decode of the sum; no numpy call.
        """
        f = self._folded
        ls = f.bias[0] + sum(map(mul, hand, f.hand_strong))
        lw = f.bias[1] + sum(map(mul, hand, f.hand_weak))
        ps, pw = f.bias[2], f.bias[3]
        for i, a, b in f.prior_terms:
            ps += a * hand[i]
            pw += b * hand[i]
        # filter(None) drops unknown keys and a key whose fields are all 0, which adds nothing
        found = list(filter(None, map(f.packed.get, keys)))
        if not found:
            return Heads(ls, lw, ps, pw, 0.0)
        u = f.field_sums(found)
        inv = f.inv_scale
        idf2 = u[_IDF2] * inv[_IDF2]
        if idf2 > 0.0:
            norm = math.sqrt(idf2)
            ls += u[_NG_S] * inv[_NG_S] / norm
            lw += u[_NG_W] * inv[_NG_W] / norm
        n_words = u[_KNOWN]
        if n_words == 0:
            return Heads(ls, lw, ps, pw, 0.0)
        ls += u[_VEC_S] * inv[_VEC_S] / n_words
        lw += u[_VEC_W] * inv[_VEC_W] / n_words
        first_vec = _N_SCALAR_COLS + f.n_centroids
        length = math.hypot(*u[first_vec:])  # cosine is scale-free: the sum's norm, unscaled
        if length <= 0.0:
            return Heads(ls, lw, ps, pw, 0.0)
        return Heads(ls, lw, ps, pw, max(u[_N_SCALAR_COLS:first_vec]) * f.cos_per_vec / length)

    def trust(self, similarity: float) -> float:
        """lam in [0, 1]: how much of the learned gain to keep at this similarity."""
        if similarity >= self.ood_hi:
            return 1.0
        if similarity <= self.ood_lo:
            return 0.0
        return (similarity - self.ood_lo) / (self.ood_hi - self.ood_lo)

    def gain(self, h: Heads, lam: float) -> float:
        """Blend of the learned and prior expected gains (see the module docstring)."""
        g_learned = _sigmoid(h.strong) - _sigmoid(h.weak)
        if lam >= 1.0:
            return g_learned
        g_prior = _sigmoid(h.prior_strong) - _sigmoid(h.prior_weak)
        ml, sl, mp, sp = self._folded.gain_stats
        z = lam * (g_learned - ml) / sl + (1.0 - lam) * (g_prior - mp) / sp
        return min(max(ml + sl * z, -1.0), 1.0)

    # -- scoring ---------------------------------------------------------------------------

    def score(self, messages_or_text: MessagesOrText, intent: Intent | None = None) -> float:
        """Difficulty in [0, 1]; higher = more to gain from the API tier. Deterministic."""
        text = flatten_request(messages_or_text)
        if intent is None:
            intent = detect_intent(messages_or_text)
        _, keys, hand = extract_words(text)
        h = self.heads(keys, hand)
        gain = self.gain(h, self.trust(h.similarity))
        # the sum of `prior_log_odds` without its dict: this runs on every routed request
        short, reasoning = _text_priors(text)
        return self.combine_sum(gain, self.intent_prior.get(intent, 0.0) + short + reasoning)[1]

    @staticmethod
    def combine(gain: float, priors: Mapping[str, float]) -> tuple[float, float]:
        return DifficultyScorer.combine_sum(gain, sum(priors.values()))

    @staticmethod
    def combine_sum(gain: float, prior: float) -> tuple[float, float]:
        """(learned score, score): the gain as a score, shifted by `prior` on the log-odds."""
        learned = (1.0 + gain) / 2.0
        return learned, _sigmoid(_logit(learned) + prior)

    def explain(self, messages_or_text: MessagesOrText, intent: Intent | None = None) -> dict[str, Any]:
        """The score, its two heads, the OOD guard, the priors, and every input's contributions.

        For features, n-grams and the word vector, `strong`/`weak` are contributions to the
        learned heads' log-odds and `contribution` = strong - weak (positive pushes towards
        "hard"). `learned_score` = (1 + gain) / 2 where the gain blends the learned heads
        (`p_strong - p_weak`) and the length prior heads by `ood.trust`; `priors` are added to the
        log-odds of `learned_score` to give `score`. The parts are recomputed unfolded; their
        sums equal the folded logits `score` uses up to the fixed-point resolution of the fold (~1e-6).
        """
        text = flatten_request(messages_or_text)
        if intent is None:
            intent = detect_intent(messages_or_text)
        _, keys, hand_list = extract_words(text)
        h = self.heads(keys, hand_list)
        lam = self.trust(h.similarity)
        x = self.inputs(text)
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
        learned_score, score = self.combine(self.gain(h, lam), priors)
        return {
            "score": score,
            "learned_score": learned_score,
            "intent": intent.value,
            "p_strong": _sigmoid(h.strong),
            "p_weak": _sigmoid(h.weak),
            "logit_strong": h.strong,
            "logit_weak": h.weak,
            "prior_logits": {"strong": h.prior_strong, "weak": h.prior_weak},
            "ood": {"similarity": h.similarity, "trust": lam, "lo": self.ood_lo, "hi": self.ood_hi,
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
            centroids = z["ood_centroids"].astype(np.float32)
            metadata = json.loads(str(z["metadata"]))
        return cls(
            vocab={k: i + 1 for i, k in enumerate(keys)},
            idf=np.concatenate([[0.0], arrays["idf"]]),
            w_ngram=np.vstack([np.zeros((1, 2)), arrays["w_ngram"].reshape(-1, 2)]),
            w_hand=arrays["w_hand"], w_vector=arrays["w_vector"], bias=arrays["bias"],
            w_prior=arrays["w_prior"], bias_prior=arrays["bias_prior"],
            ood_centroids=centroids, gain_stats=arrays["gain_stats"],
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
            ood_centroids=self.ood_centroids.astype(np.float32),
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
