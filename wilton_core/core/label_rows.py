"""Partial routing labels -> the `LabelledRow`s that `difficulty_train.learn` fits (pure).

A feedback label scores one tier only: the app saw the answer of the model that served it, so a
local answer gives `weak` and an API answer gives `strong`; the other tier is unknown. A shadow
label has both. `learn` needs both per row, so the unobserved tier is filled in:

- "anchor" (the default): from the active scorer's own head for that tier, P(tier answers well
  | prompt). The filled value carries no new information, so that head is pulled toward what it
  already predicts there, while the observed tier teaches its head; the held-back comparison in
  `learn` sees the same filled values for the old and the new model.
- "mean": the mean observed score of that tier over the labels (a constant per tier).
- "both": only labels that observed both tiers (shadow judging); feedback alone gives none.

bench/learning_curve.py measured the three on the same simulated traffic; docs/learning.md has
the numbers and why "anchor" is the default.

Judging a model on partial labels (`heldback_pgr`) never uses a model's own predictions: a tier
nobody observed is filled with that tier's mean observed score, the same constant for every
model compared. Filled from the anchor's heads, the held-back figure favoured the anchor (its
ranking agrees with its own fills): measured 0.554 for the shipped scorer on a workload it routes
at random level (0.25), so a candidate that lifted the true test PGR from 0.25 to 0.43 looked worse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from wilton_core.core.difficulty import Array, DifficultyScorer
from wilton_core.core.difficulty_train import LabelledRow, featurize

__all__ = ["FILLS", "PartialLabel", "head_predictions", "heldback_pgr", "to_labelled"]

FILLS = ("anchor", "mean", "both")


@dataclass(frozen=True, slots=True)
class PartialLabel:
    prompt: str
    weak: float | None    # the local tier's answer quality in [0, 1]; None = not observed
    strong: float | None  # the API tier's


def head_predictions(scorer: DifficultyScorer, prompts: Sequence[str]) -> Array:
    """(n, 2): the learned heads' P(strong answers well), P(weak answers well) per prompt, batched."""
    from wilton_core.core.difficulty_train import heads  # the runtime's own formula of the heads

    if not prompts:
        return np.zeros((0, 2))
    z = np.array([(h.strong, h.weak) for h in heads(scorer, featurize(prompts, scorer.vectors))], dtype=np.float64)
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def to_labelled(labels: Sequence[PartialLabel], fill: str,
                predict: Callable[[Sequence[str]], Array] | None = None) -> list[LabelledRow]:
    """Rows for `learn`: labels without any score are skipped; the missing tier is filled per `fill`.

    `predict` (fill "anchor"): prompts -> (n, 2) head probabilities (`head_predictions` of the anchor).
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    usable = [lb for lb in labels if lb.prompt and (lb.weak is not None or lb.strong is not None)]
    if fill == "both":
        return [LabelledRow(lb.prompt, float(lb.strong), float(lb.weak)) for lb in usable
                if lb.weak is not None and lb.strong is not None]
    if fill == "mean":
        weak_seen = [lb.weak for lb in usable if lb.weak is not None]
        strong_seen = [lb.strong for lb in usable if lb.strong is not None]
        mw = sum(weak_seen) / len(weak_seen) if weak_seen else 0.5
        ms = sum(strong_seen) / len(strong_seen) if strong_seen else 0.5
        return [LabelledRow(lb.prompt, ms if lb.strong is None else lb.strong, mw if lb.weak is None else lb.weak)
                for lb in usable]
    if predict is None:
        raise ValueError("fill 'anchor' needs the anchor's head predictions")
    partial = [i for i, lb in enumerate(usable) if lb.weak is None or lb.strong is None]
    probs = predict([usable[i].prompt for i in partial])
    filled = {i: (float(p[0]), float(p[1])) for i, p in zip(partial, probs, strict=True)}
    out = []
    for i, lb in enumerate(usable):
        ps, pw = filled.get(i, (0.5, 0.5))
        out.append(LabelledRow(lb.prompt, ps if lb.strong is None else lb.strong, pw if lb.weak is None else lb.weak))
    return out


def heldback_pgr(scorer: DifficultyScorer, labels: Sequence[PartialLabel], share: float = 0.25) -> float | None:
    """PGR at `share` strong calls on (partial) held-back labels, unobserved tiers filled with the
    tier's observed mean; None when there are fewer than 10 rows or no gap between the tiers."""
    from wilton_core.core.difficulty_eval import pgr_at, pgr_curve

    rows = to_labelled(labels, "mean")
    strong, weak = [r.strong for r in rows], [r.weak for r in rows]
    if len(rows) < 10 or abs(sum(strong) - sum(weak)) < 1e-9:
        return None
    return pgr_at(pgr_curve([scorer.score(r.prompt) for r in rows], strong, weak), share)
