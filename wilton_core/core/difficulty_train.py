"""Fitting the difficulty scorer (numpy, deterministic): featurise, fit, cross-validate.

Used by `tools/train_difficulty.py` (the shipped artefact), `bench/routing_quality.py` (hash
split, leave-subject-out and held-out-group figures) and `wiltonctl route learn` (adapting the
shipped model to a deployment's labels, regularised toward it).

Every head is an L2-regularised logistic regression fitted by full-batch Adam from zeros (or
from the anchor model), a fixed number of steps: the same data gives the same weights. Dense
inputs are standardised for fitting (so one L2 strength means the same for every column) and
the weights folded back to raw units for the artefact.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from wilton_core.core.difficulty import (
    DEFAULT_INTENT_PRIOR,
    PRIOR_FEATURE_NAMES,
    Array,
    Array32,
    DifficultyScorer,
    Heads,
    WordVectors,
    prior_log_odds,
)
from wilton_core.core.features import HAND_FEATURE_NAMES
from wilton_core.core.intent import detect_intent

__all__ = [
    "LEARN_CONFIG",
    "SUBJECT_GROUPS",
    "Featurized",
    "LabelError",
    "LabelledRow",
    "LearnResult",
    "TrainConfig",
    "batch_scores",
    "featurize",
    "fit",
    "group_of",
    "heads",
    "kmeans",
    "learn",
    "out_of_fold_scores",
    "read_labelled",
    "subject_folds",
    "trusts",
]

# MMLU's four super-categories (hendrycks/test categories.py), used to hold out whole fields.
SUBJECT_GROUPS: Mapping[str, tuple[str, ...]] = {
    "stem": (
        "abstract_algebra", "astronomy", "college_biology", "college_chemistry", "college_computer_science",
        "college_mathematics", "college_physics", "computer_security", "conceptual_physics",
        "electrical_engineering", "elementary_mathematics", "high_school_biology", "high_school_chemistry",
        "high_school_computer_science", "high_school_mathematics", "high_school_physics",
        "high_school_statistics", "machine_learning",
    ),
    "humanities": (
        "formal_logic", "high_school_european_history", "high_school_us_history", "high_school_world_history",
        "international_law", "jurisprudence", "logical_fallacies", "moral_disputes", "moral_scenarios",
        "philosophy", "prehistory", "professional_law", "world_religions",
    ),
    "social_sciences": (
        "econometrics", "high_school_geography", "high_school_government_and_politics",
        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
        "human_sexuality", "professional_psychology", "public_relations", "security_studies", "sociology",
        "us_foreign_policy",
    ),
    "other": (
        "anatomy", "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
        "management", "marketing", "medical_genetics", "miscellaneous", "nutrition", "professional_accounting",
        "professional_medicine", "virology",
    ),
}
MAX_OOD_CENTROIDS = 96   # centroids kept for the similarity (scoring cost grows with them)
LEARN_OOD_CENTROIDS = 16  # added by each `route learn` for the deployment's own prompts
_GROUP_OF = {s: g for g, subjects in SUBJECT_GROUPS.items() for s in subjects}


def group_of(category: str) -> str:
    return _GROUP_OF.get(category, "other")


def subject_folds(categories: Sequence[str], k: int = 5) -> list[list[int]]:
    """Row indices of k folds that never split a subject: subjects sorted by a hash, dealt out."""
    subjects = sorted(set(categories), key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    fold_of = {s: i % k for i, s in enumerate(subjects)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, c in enumerate(categories):
        folds[fold_of[c]].append(i)
    return folds


@dataclass(frozen=True, slots=True)
class TrainConfig:
    min_df: int = 5            # n-grams in fewer training prompts are dropped (memorisation guard)
    tfidf: bool = True         # idf weights; False = binary presence (the v1 scorer)
    l2_ngram: float = 100.0
    l2_hand: float = 30.0
    l2_vector: float = 10.0
    use_ngrams: bool = True
    use_vectors: bool = True
    use_hand: bool = True
    # Hand features the learned heads do not read. MMLU teaches "numbers and math symbols mean
    # hard", which inverts inside a math workload (issue 16); without these three the
    # leave-subject-out PGR@25% went from 0.359 to 0.393 (bench/routing_quality.py).
    learned_exclude: tuple[str, ...] = ("numbers", "math_symbols", "digit_share")
    steps: int = 300
    learning_rate: float = 0.05
    # OOD guard: the similarity is the max cosine to `ood_centroids` k-means centroids of the
    # training prompts' mean word vectors; trust 0 at or below the `ood_lo` quantile of the
    # training prompts' own similarity, 1 from the `ood_hi` quantile on (difficulty.py). The
    # ramp 0.50 -> 0.95 is the loosest that keeps every held-out MMLU field at or above its
    # length prior (bench/routing_quality.py; the earlier kNN guard at 0.10 -> 0.60 was 0.05 below
    # it on STEM and "other", this one 0.07-0.09).
    guard: bool = True
    ood_centroids: int = 32
    ood_lo_quantile: float = 0.50
    ood_hi_quantile: float = 0.95
    kmeans_iterations: int = 30
    # Regularisation toward an anchor model (route learn): L2 on (w - w_anchor).
    anchor_strength: float = 0.0
    prior_features: tuple[str, ...] = PRIOR_FEATURE_NAMES

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(slots=True)
class Featurized:
    """Per-prompt inputs, computed once (the same functions the runtime scorer calls)."""

    keys: list[set[str]]
    hand: Array
    vector: Array
    coverage: Array
    priors: Array = field(default_factory=lambda: np.zeros(0))

    def take(self, idx: Sequence[int]) -> Featurized:
        ix = np.asarray(idx, dtype=np.int64)
        return Featurized([self.keys[i] for i in idx], self.hand[ix], self.vector[ix], self.coverage[ix],
                          self.priors[ix])



def featurize(texts: Sequence[str], vectors: WordVectors) -> Featurized:
    from wilton_core.core.features import extract_words

    keys: list[set[str]] = []
    hand: list[list[float]] = []
    vec = np.zeros((len(texts), vectors.dims))
    cov = np.zeros(len(texts))
    priors = np.zeros(len(texts))
    for i, t in enumerate(texts):
        _, ks, h = extract_words(t)
        keys.append(ks)
        hand.append(h)
        vec[i], cov[i] = vectors.mean(ks)
        priors[i] = sum(prior_log_odds(t, detect_intent(t), DEFAULT_INTENT_PRIOR).values())
    return Featurized(keys, np.array(hand, dtype=np.float64), vec, cov, priors)


class _Sparse:
    """Row-normalised TF-IDF (or binary) n-gram matrix in CSR form (numpy only)."""

    def __init__(self, key_sets: Sequence[set[str]], vocab: Mapping[str, int], idf: Array) -> None:
        ind: list[int] = []
        ptr = [0]
        dat: list[float] = []
        for keys in key_sets:
            ids = sorted(filter(None, map(vocab.get, keys)))
            w = idf[ids]
            norm = math.sqrt(float(w @ w)) if ids else 1.0
            ind.extend(ids)
            dat.extend((w / norm).tolist())
            ptr.append(len(ind))
        self.ind = np.array(ind, dtype=np.int64)
        self.dat = np.array(dat, dtype=np.float64)
        self.row = np.repeat(np.arange(len(key_sets)), np.diff(np.array(ptr)))
        self.n_rows = len(key_sets)
        self.n_cols = len(idf)

    def matvec(self, w: Array) -> Array:
        return np.asarray(np.bincount(self.row, weights=self.dat * w[self.ind], minlength=self.n_rows), dtype=np.float64)

    def rmatvec(self, r: Array) -> Array:
        return np.asarray(np.bincount(self.ind, weights=self.dat * r[self.row], minlength=self.n_cols), dtype=np.float64)


def _adam(params: list[Array], grad: Callable[[list[Array]], list[Array]], steps: int, lr: float) -> list[Array]:
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        for k, g in enumerate(grad(params)):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            params[k] = params[k] - lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
    return params


def _fit_head(x: _Sparse | None, d: Array, y: Array, l2_sparse: float, l2_dense: Array, cfg: TrainConfig,
              start: tuple[Array, Array, float], anchor: tuple[Array, Array] | None) -> tuple[Array, Array, float]:
    """One logistic head over sparse x and standardised dense d; L2 toward `anchor` (or 0)."""
    n = len(y)
    a_sparse, a_dense = anchor if anchor is not None else (np.zeros_like(start[0]), np.zeros_like(start[1]))
    strength = 1.0 + cfg.anchor_strength

    def grad(p: list[Array]) -> list[Array]:
        z = d @ p[1] + p[2][0]
        if x is not None:
            z = z + x.matvec(p[0])
        r = (1.0 / (1.0 + np.exp(-z)) - y) / n
        gs = (x.rmatvec(r) if x is not None else np.zeros_like(p[0])) + strength * l2_sparse * (p[0] - a_sparse) / n
        gd = d.T @ r + strength * l2_dense * (p[1] - a_dense) / n
        return [gs, gd, np.array([r.sum()])]

    ws, wd, b = _adam([start[0].copy(), start[1].copy(), np.array([start[2]])], grad, cfg.steps, cfg.learning_rate)
    return ws, wd, float(b[0])


def _vocab(keys: Sequence[set[str]], min_df: int, tfidf: bool) -> tuple[dict[str, int], Array]:
    df: Counter[str] = Counter()
    for ks in keys:
        df.update(ks)
    names = sorted(k for k, c in df.items() if c >= min_df)
    n = len(keys)
    idf = np.array([0.0] + [math.log((1 + n) / (1 + df[k])) + 1.0 if tfidf else 1.0 for k in names])
    return {k: i + 1 for i, k in enumerate(names)}, idf


def _unit(v: Array) -> Array:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(v / np.where(n == 0, 1.0, n), dtype=np.float64)


def kmeans(x: Array, k: int, iterations: int) -> Array32:
    """Unit-norm centroids of the unit rows of `x` (spherical k-means; deterministic: the first
    centroids are evenly spaced rows, an emptied cluster keeps its centroid)."""
    u = _unit(x[np.linalg.norm(x, axis=1) > 0])
    if len(u) == 0:
        return np.zeros((0, x.shape[1]), dtype=np.float32)
    c = u[np.linspace(0, len(u) - 1, min(k, len(u))).astype(np.int64)].copy()
    for _ in range(iterations):
        assign = np.argmax(u @ c.T, axis=1)
        for j in range(len(c)):
            members = u[assign == j]
            if len(members):
                c[j] = members.mean(axis=0)
        c = _unit(c)
    return c.astype(np.float32)


def _similarities(centroids: Array32, vectors: Array) -> Array:
    """Max cosine of each vector to the centroids (0 for a zero vector), as `DifficultyScorer.heads`."""
    if len(centroids) == 0:
        return np.zeros(len(vectors))
    norm = np.linalg.norm(vectors, axis=1)
    sims = (vectors @ centroids.T.astype(np.float64)).max(axis=1)
    return np.where(norm > 0, sims / np.where(norm > 0, norm, 1.0), 0.0)


def _ood_stats(vectors: Array, cfg: TrainConfig) -> tuple[Array32, float, float]:
    centroids = kmeans(vectors, cfg.ood_centroids, cfg.kmeans_iterations)
    if not cfg.guard or len(centroids) == 0:
        return centroids, -math.inf, -math.inf
    sims = _similarities(centroids, vectors)
    lo, hi = (float(v) for v in np.quantile(sims, [cfg.ood_lo_quantile, cfg.ood_hi_quantile]))
    return centroids, lo, max(hi, lo + 1e-6)


def heads(scorer: DifficultyScorer, feat: Featurized) -> list[Heads]:
    """`scorer.heads` of every prompt (the runtime's own code, so batch and runtime agree exactly)."""
    return [scorer.heads(keys, hand) for keys, hand in zip(feat.keys, feat.hand.tolist(), strict=True)]


def trusts(scorer: DifficultyScorer, feat: Featurized) -> Array:
    return np.array([scorer.trust(h.similarity) for h in heads(scorer, feat)])


def _gains(scorer: DifficultyScorer, feat: Featurized) -> tuple[Array, Array]:
    z = np.array(heads(scorer, feat), dtype=np.float64).reshape(-1, 5)
    p = 1.0 / (1.0 + np.exp(-z[:, :4]))
    return p[:, 0] - p[:, 1], p[:, 2] - p[:, 3]


def fit(feat: Featurized, strong: Array, weak: Array, vectors: WordVectors, cfg: TrainConfig,
        anchor: DifficultyScorer | None = None, metadata: Mapping[str, Any] | None = None) -> DifficultyScorer:
    """Fit both heads, their length/structure priors and the OOD statistics on `feat`.

    With `anchor` (route learn): the anchor's vocabulary and idf are kept, weights start from
    the anchor's and are pulled toward them with `cfg.anchor_strength`.
    """
    n_hand = len(HAND_FEATURE_NAMES)
    if anchor is not None:
        vocab, idf = dict(anchor.vocab), anchor.idf.copy()
    elif cfg.use_ngrams:
        vocab, idf = _vocab(feat.keys, cfg.min_df, cfg.tfidf)
    else:
        vocab, idf = {}, np.zeros(1)
    x = _Sparse(feat.keys, vocab, idf) if vocab else None
    raw = np.hstack([feat.hand, feat.vector])
    mu = raw.mean(0)
    sd = raw.std(0)
    sd[sd < 1e-9] = 1.0
    d = (raw - mu) / sd
    hand_mask = np.array([0.0 if (not cfg.use_hand or nm in cfg.learned_exclude) else 1.0
                          for nm in HAND_FEATURE_NAMES])
    mask = np.concatenate([hand_mask, np.full(feat.vector.shape[1], 1.0 if cfg.use_vectors else 0.0)])
    d = d * mask
    l2_dense = np.concatenate([np.full(n_hand, cfg.l2_hand), np.full(feat.vector.shape[1], cfg.l2_vector)])
    heads: list[tuple[Array, Array, float]] = []
    for h, y in enumerate((strong, weak)):
        if anchor is not None:
            w_raw = np.concatenate([anchor.w_hand[:, h], anchor.w_vector[:, h]])
            a_dense = w_raw * sd * mask
            a_sparse = anchor.w_ngram[:, h].copy()
            start = (a_sparse, a_dense, float(anchor.bias[h] + w_raw @ mu))
            heads.append(_fit_head(x, d, y, cfg.l2_ngram, l2_dense, cfg, start, (a_sparse, a_dense)))
        else:
            start = (np.zeros(len(idf)), np.zeros(d.shape[1]), 0.0)
            heads.append(_fit_head(x, d, y, cfg.l2_ngram, l2_dense, cfg, start, None))
    w_dense = np.stack([hd[1] * mask / sd for hd in heads], axis=1)
    bias = np.array([hd[2] - float(hd[1] * mask / sd @ mu) for hd in heads])
    w_ngram = np.stack([hd[0] for hd in heads], axis=1) if vocab else np.zeros((1, 2))
    # Prior heads: length and layout only, lightly regularised.
    pidx = [HAND_FEATURE_NAMES.index(nm) for nm in cfg.prior_features]
    pm, ps = feat.hand[:, pidx].mean(0), feat.hand[:, pidx].std(0)
    ps[ps < 1e-9] = 1.0
    pd = (feat.hand[:, pidx] - pm) / ps
    w_prior = np.zeros((n_hand, 2))
    bias_prior = np.zeros(2)
    for h, y in enumerate((strong, weak)):
        _, wp, bp = _fit_head(None, pd, y, 0.0, np.full(len(pidx), 1.0), replace(cfg, anchor_strength=0.0),
                              (np.zeros(1), np.zeros(len(pidx)), 0.0), None)
        w_prior[pidx, h] = wp / ps
        bias_prior[h] = bp - float(wp / ps @ pm)
    centroids, lo, hi = _ood_stats(feat.vector, cfg)
    if anchor is not None:
        # The deployment's own prompts get centroids of their own (they are in-distribution from
        # now on; the oldest dropped past a cap to bound scoring cost) and the trust ramp is
        # recalibrated on them against the merged centroids, never stricter than the anchor's:
        # without this, prompts like the learned ones stayed untrusted and learning changed
        # nothing (measured with the earlier kNN guard: trust 0.06).
        own = kmeans(feat.vector, min(LEARN_OOD_CENTROIDS, max(1, len(feat.vector) // 20)), cfg.kmeans_iterations)
        centroids = np.vstack([anchor.ood_centroids, own])[-MAX_OOD_CENTROIDS:].astype(np.float32)
        lo, hi = anchor.ood_lo, anchor.ood_hi
        if cfg.guard and len(feat.vector) and not math.isinf(lo):
            sims = _similarities(centroids, feat.vector)
            q_lo, q_hi = (float(v) for v in np.quantile(sims, [cfg.ood_lo_quantile, cfg.ood_hi_quantile]))
            lo, hi = min(lo, q_lo), max(min(hi, q_hi), min(lo, q_lo) + 1e-6)
    scorer = DifficultyScorer(
        vocab=vocab, idf=idf, w_ngram=w_ngram, w_hand=w_dense[:n_hand], w_vector=w_dense[n_hand:], bias=bias,
        w_prior=w_prior, bias_prior=bias_prior, ood_centroids=centroids, ood_lo=lo, ood_hi=hi,
        gain_stats=np.array([0.0, 1.0, 0.0, 1.0]), vectors=vectors, metadata=dict(metadata or {}),
    )
    if anchor is not None:
        # A few hundred labels are too few to re-estimate the length prior and the gains'
        # spread: those stay the anchor's (measured: refitting them cost 0.10 PGR at 200 labels).
        return replace(scorer, w_prior=anchor.w_prior, bias_prior=anchor.bias_prior, gain_stats=anchor.gain_stats)
    gl, gp = _gains(scorer, feat)
    stats = np.array([gl.mean(), max(float(gl.std()), 1e-6), gp.mean(), max(float(gp.std()), 1e-6)])
    return replace(scorer, gain_stats=stats)


def batch_scores(scorer: DifficultyScorer, feat: Featurized, mode: str = "guarded") -> Array:
    """`scorer.score` for many prompts at once (the runtime's own arithmetic, prompt by prompt).

    mode: "guarded" (what the router uses), "learned" (no OOD guard: trust 1) or "prior" (the
    length prior heads alone: trust 0). Hand-set priors (intent, short, reasoning) are included.
    """
    if mode not in ("guarded", "learned", "prior"):
        raise ValueError(f"unknown mode {mode!r}")
    out = np.zeros(len(feat.keys))
    for i, h in enumerate(heads(scorer, feat)):
        lam = scorer.trust(h.similarity) if mode == "guarded" else 1.0 if mode == "learned" else 0.0
        out[i] = scorer.combine_sum(scorer.gain(h, lam), float(feat.priors[i]))[1]
    return out


def out_of_fold_scores(feat: Featurized, strong: Array, weak: Array, vectors: WordVectors, cfg: TrainConfig,
                       folds: Sequence[Sequence[int]], modes: Sequence[str] = ("guarded",)) -> dict[str, Array]:
    """Scores of every row in a fold from a model fitted on the other folds, per mode."""
    n = len(strong)
    out = {mode: np.full(n, np.nan) for mode in modes}
    for test in folds:
        test_set = set(test)
        train = [i for i in range(n) if i not in test_set]
        model = fit(feat.take(train), strong[train], weak[train], vectors, cfg)
        part = feat.take(list(test))
        for mode in modes:
            out[mode][list(test)] = batch_scores(model, part, mode)
    return out


# -- adapting to a deployment's labels (wiltonctl route learn) --------------------------------

MAX_LEARN_ROWS = 200_000
MAX_PROMPT_CHARS = 200_000
# The deployment's own prompts are the adapted model's training distribution: its trust ramp is
# recalibrated on them at the 10th -> 60th percentile (never stricter than the anchor's). With the
# shipped 50th -> 95th ramp, the workload's unseen prompts kept trust ~0.2 and 2,000 hidden-rule
# labels moved PGR@25% only 0.276 -> 0.309; with this ramp 0.276 -> 0.362 (bench/routing_quality.py).
LEARN_CONFIG = TrainConfig(steps=150, ood_lo_quantile=0.10, ood_hi_quantile=0.60)


class LabelError(ValueError):
    """A labelled file that cannot be used; the message names the line."""


@dataclass(frozen=True, slots=True)
class LabelledRow:
    prompt: str
    strong: float
    weak: float


def read_labelled(lines: Iterable[str], where: str = "labels") -> list[LabelledRow]:
    """Rows in the routing data's format: `prompt`, `strong_score`, `weak_score` in [0, 1].

    Extra fields are ignored; blank lines skipped. Anything else is a `LabelError` naming the line.
    """
    out: list[LabelledRow] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(out) >= MAX_LEARN_ROWS:
            raise LabelError(f"{where}: more than {MAX_LEARN_ROWS} rows; split the file")
        try:
            obj = json.loads(line)
        except ValueError:
            raise LabelError(f"{where}:{n}: not a JSON object") from None
        if not isinstance(obj, dict):
            raise LabelError(f"{where}:{n}: not a JSON object")
        prompt = obj.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise LabelError(f"{where}:{n}: 'prompt' must be a non-empty string")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise LabelError(f"{where}:{n}: 'prompt' longer than {MAX_PROMPT_CHARS} characters")
        scores = []
        for key in ("strong_score", "weak_score"):
            v = obj.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= float(v) <= 1.0:
                raise LabelError(f"{where}:{n}: '{key}' must be a number in [0, 1]")
            scores.append(float(v))
        out.append(LabelledRow(prompt, scores[0], scores[1]))
    return out


@dataclass(frozen=True, slots=True)
class LearnResult:
    scorer: DifficultyScorer
    train_rows: int
    heldback_rows: int
    before_pgr_25: float | None   # the anchor on the held-back labels (None: PGR undefined there)
    after_pgr_25: float | None    # the adapted model on the same rows

    @property
    def improved(self) -> bool:
        return self.before_pgr_25 is not None and self.after_pgr_25 is not None and \
            self.after_pgr_25 > self.before_pgr_25


def learn(anchor: DifficultyScorer, rows: Sequence[LabelledRow], cfg: TrainConfig = LEARN_CONFIG,
          heldback_share: float = 0.2, metadata: Mapping[str, Any] | None = None) -> LearnResult:
    """Adapt `anchor` to `rows`: warm start from it, L2 toward it; compare both on held-back rows.

    The held-back part is chosen by a hash of the prompt (stable across runs) and never fitted.
    """
    from wilton_core.core.difficulty_eval import is_heldout, pgr_at, pgr_curve

    if len(rows) < 20:
        raise LabelError(f"need at least 20 labelled rows to learn from, got {len(rows)}")
    held = [r for r in rows if is_heldout(r.prompt, heldback_share)]
    train = [r for r in rows if not is_heldout(r.prompt, heldback_share)]
    feat = featurize([r.prompt for r in train], anchor.vectors)
    scorer = fit(feat, np.array([r.strong for r in train]), np.array([r.weak for r in train]), anchor.vectors,
                 cfg, anchor=anchor, metadata=metadata)

    def pgr25(model: DifficultyScorer) -> float | None:
        strong = [r.strong for r in held]
        weak = [r.weak for r in held]
        if len(held) < 10 or sum(strong) == sum(weak):
            return None
        return pgr_at(pgr_curve([model.score(r.prompt) for r in held], strong, weak), 0.25)

    return LearnResult(scorer, len(train), len(held), pgr25(anchor), pgr25(scorer))
