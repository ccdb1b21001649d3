"""One refit of the difficulty scorer on the labels live traffic left in the store (issue 16 §2).

Run by the coherence daemon every `[learning] refit_interval_s` (a scheduler job of its own, in
its own thread: the control loop never waits for it) and by `wiltonctl route refit`. The rule,
the same for both:

1. Read the newest learnable labels (`route_labels` rows that kept their prompt), at most
   `max_rows` of them (bounds CPU and memory: `learn` is linear in rows). Fewer than
   `min_labels`: nothing is fitted.
2. Convert them to full rows (core/label_rows.py, fill "anchor": a tier nobody observed is
   filled from the active scorer's own head).
3. `learn()` from the active version (the shipped scorer when none is): warm start, L2 toward it,
   20% of the labels held back by a hash of the prompt and never fitted.
4. Judge both on the held-back labels as they were observed (`label_rows.heldback_pgr`: a tier
   nobody observed gets that tier's mean, never a model's own prediction) and publish (add +
   activate, one transaction) ONLY when the new model's PGR@25% there beats the active one's;
   never a worse or an equal model. Routers load it within ~1 s.

Both figures are always recorded: in the published version's summary (`route model show`), and,
published or not, in `kv` under `route_refit:last` (`route labels` and the daemon's log show it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from wilton_core.core.difficulty import DifficultyScorer
from wilton_core.core.difficulty_eval import is_heldout
from wilton_core.core.difficulty_train import LabelError, learn
from wilton_core.core.label_rows import PartialLabel, head_predictions, heldback_pgr, to_labelled
from wilton_core.store.difficulty_models import DifficultyVersions
from wilton_core.store.route_labels import read_labels

if TYPE_CHECKING:
    from wilton_core.store.base import Store

__all__ = ["LAST_REFIT_KEY", "MAX_REFIT_ROWS", "Candidate", "RefitOutcome", "fit_candidate", "last_refit", "refit"]

log = logging.getLogger("wilton.coherence.refit")

LAST_REFIT_KEY = "route_refit:last"
HELDBACK_SHARE = 0.2  # by a hash of the prompt, as `learn` holds back: never fitted
MAX_REFIT_ROWS = 5000  # ~15 s of one core on this machine's class of CPU (docs/learning.md)


@dataclass(frozen=True, slots=True)
class RefitOutcome:
    """What one refit did. `published`: a new version is active; else `reason` says why not."""

    ts: float
    published: bool
    reason: str                      # "published" | "not_better" | "too_few_labels" | "undefined"
    labels: int                      # learnable labels read (at most max_rows)
    rows: int                        # rows given to learn() after the fill
    fill: str
    parent: int | None = None        # the active version it started from (None: shipped)
    version: int | None = None       # the new version (published, or kept inactive: never)
    train_rows: int = 0
    heldback_rows: int = 0
    heldback_pgr_25_before: float | None = None
    heldback_pgr_25_after: float | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model fitted on the labels outside the held-back share, and both figures on that share."""

    scorer: DifficultyScorer
    rows: int
    train_rows: int
    heldback_rows: int
    before: float | None  # the anchor's held-back PGR@25%
    after: float | None   # the candidate's

    @property
    def better(self) -> bool:
        return self.before is not None and self.after is not None and self.after > self.before


def fit_candidate(anchor: DifficultyScorer, labels: Sequence[PartialLabel], fill: str = "anchor",
                  metadata: Mapping[str, Any] | None = None) -> Candidate:
    """learn() from `anchor` on the labels (filled per `fill`) outside the hash-held-back share,
    then judge both on the held-back labels as observed (label_rows.heldback_pgr: no model's own
    fills). Raises LabelError when there are too few rows to fit."""
    rows = to_labelled(labels, fill, lambda prompts: head_predictions(anchor, prompts))
    result = learn(anchor, rows, heldback_share=HELDBACK_SHARE, metadata=metadata)
    held = [lb for lb in labels if is_heldout(lb.prompt, HELDBACK_SHARE)]
    return Candidate(result.scorer, len(rows), result.train_rows, len(held), heldback_pgr(anchor, held),
                     heldback_pgr(result.scorer, held))


def _newest_since(store: Store, max_rows: int) -> float:
    """The ts from which at most `max_rows` learnable labels remain (0: all of them)."""
    row = store.query_one(
        "SELECT ts FROM route_labels WHERE prompt IS NOT NULL ORDER BY ts DESC LIMIT 1 OFFSET ?",
        (max_rows - 1,))
    return 0.0 if row is None else float(row[0])


def refit(store: Store, *, now: float, min_labels: int, max_rows: int = MAX_REFIT_ROWS,
          fill: str = "anchor") -> RefitOutcome:
    """One refit by the rule above; the outcome is also written to kv `route_refit:last`."""
    labels = read_labels(store, _newest_since(store, max_rows), with_prompt=True, limit=max_rows)
    partial = [PartialLabel(lb.prompt or "", lb.weak_score, lb.strong_score) for lb in labels]
    versions = DifficultyVersions(store)
    parent, anchor = versions.active_scorer()
    out = RefitOutcome(ts=now, published=False, reason="too_few_labels", labels=len(labels), rows=0, fill=fill,
                       parent=parent)
    if len(labels) < min_labels:
        return _record(store, out)
    inherited = {k: v for k, v in anchor.metadata.items() if k not in ("heldout", "heldout_rows")}
    try:
        cand = fit_candidate(anchor, partial, fill, metadata={
            **inherited, "version": "learned", "learned_from": "route_labels", "parent": parent})
    except LabelError:
        return _record(store, out)
    out = replace(out, rows=cand.rows, train_rows=cand.train_rows, heldback_rows=cand.heldback_rows,
                  heldback_pgr_25_before=cand.before, heldback_pgr_25_after=cand.after)
    if not cand.better:
        return _record(store, replace(out, reason="undefined" if cand.before is None or cand.after is None
                                      else "not_better"))
    summary = {"rows": out.rows, "train_rows": out.train_rows, "heldback_rows": out.heldback_rows,
               "heldback_pgr_25_before": out.heldback_pgr_25_before,
               "heldback_pgr_25_after": out.heldback_pgr_25_after, "improved": True, "source": "refit",
               "labels": out.labels, "fill": fill, "parent": parent}
    version = versions.add(cand.scorer, summary, parent, now, activate=True)
    return _record(store, replace(out, published=True, reason="published", version=version))


def _record(store: Store, out: RefitOutcome) -> RefitOutcome:
    store.kv_set(LAST_REFIT_KEY, json.dumps(out.as_json(), sort_keys=True))
    log.info("route refit: %s (labels %d, held-back PGR@25%% %s -> %s%s)", out.reason, out.labels,
             out.heldback_pgr_25_before, out.heldback_pgr_25_after,
             f", version {out.version} active" if out.published else "")
    return out


def last_refit(store: Store) -> dict[str, Any] | None:
    raw = store.kv_get(LAST_REFIT_KEY)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
