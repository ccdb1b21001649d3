"""Routing labels in the store (`route_labels`, migration 0051): the one reader and writer.

Writers: the router's `POST /v1/feedback` and its shadow judge. Reader: the coherence daemon's
periodic refit and `wiltonctl route labels`. The store is a parameter (SQLite or PostgreSQL, same SQL).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from wilton_core.store.base import Store

__all__ = ["LABEL_SOURCES", "LabelCounts", "RouteLabel", "add_labels", "count_labels", "read_labels"]

LABEL_SOURCES = ("feedback", "shadow")
MAX_PROMPT_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class RouteLabel:
    request_id: str
    source: str                       # one of LABEL_SOURCES
    ts: float
    model: str = ""                   # the model whose answer was scored (feedback) or the API side (shadow)
    weak_score: float | None = None   # local tier's answer quality in [0, 1]; None = not observed
    strong_score: float | None = None  # API tier's answer quality in [0, 1]; None = not observed
    prompt: str | None = None         # only where prompt capture is enabled
    key_id: str | None = None
    detail: dict[str, str | int | float | bool | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in LABEL_SOURCES:
            raise ValueError(f"label source must be one of {LABEL_SOURCES}, got {self.source!r}")
        if not self.request_id:
            raise ValueError("a label needs a request id")
        for name in ("weak_score", "strong_score"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, float | int) and math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1]")
        if self.weak_score is None and self.strong_score is None:
            raise ValueError("a label needs at least one of weak_score and strong_score")
        if self.prompt is not None and len(self.prompt) > MAX_PROMPT_CHARS:
            object.__setattr__(self, "prompt", self.prompt[:MAX_PROMPT_CHARS])

    @property
    def id(self) -> str:
        return f"{self.source}:{self.request_id}"


_COLUMNS = "id, ts, request_id, source, model, weak_score, strong_score, prompt, key_id, detail"
_UPSERT = (
    f"INSERT INTO route_labels ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, model = excluded.model, "
    "weak_score = excluded.weak_score, strong_score = excluded.strong_score, prompt = excluded.prompt, "
    "key_id = excluded.key_id, detail = excluded.detail"
)


def add_labels(store: Store, labels: Sequence[RouteLabel]) -> None:
    """Insert (or replace, same source and request id) labels in one transaction."""
    if not labels:
        return
    rows = [(lb.id, lb.ts, lb.request_id, lb.source, lb.model, lb.weak_score, lb.strong_score, lb.prompt,
             lb.key_id, json.dumps(lb.detail, sort_keys=True)) for lb in labels]
    with store.transaction():
        store.executemany(_UPSERT, rows)


def read_labels(store: Store, since: float = 0.0, *, with_prompt: bool = False,
                limit: int = 100_000) -> list[RouteLabel]:
    """Labels from `since` on, oldest first (`with_prompt`: only those that kept their prompt)."""
    where = "ts >= ?" + (" AND prompt IS NOT NULL" if with_prompt else "")
    rows = store.query(
        f"SELECT request_id, source, ts, model, weak_score, strong_score, prompt, key_id, detail "
        f"FROM route_labels WHERE {where} ORDER BY ts, id LIMIT ?", (since, limit))
    out: list[RouteLabel] = []
    for request_id, source, ts, model, weak, strong, prompt, key_id, detail in rows:
        out.append(RouteLabel(
            request_id=str(request_id), source=str(source), ts=float(ts), model=str(model or ""),
            weak_score=None if weak is None else float(weak), strong_score=None if strong is None else float(strong),
            prompt=None if prompt is None else str(prompt), key_id=None if key_id is None else str(key_id),
            detail=json.loads(detail or "{}")))
    return out


@dataclass(frozen=True, slots=True)
class LabelCounts:
    source: str
    total: int
    with_prompt: int
    both_tiers: int   # rows with a weak and a strong score


def count_labels(store: Store, since: float = 0.0) -> list[LabelCounts]:
    rows = store.query(
        "SELECT source, COUNT(*), "
        "SUM(CASE WHEN prompt IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN weak_score IS NOT NULL AND strong_score IS NOT NULL THEN 1 ELSE 0 END) "
        "FROM route_labels WHERE ts >= ? GROUP BY source ORDER BY source", (since,))
    return [LabelCounts(str(s), int(t), int(p or 0), int(b or 0)) for s, t, p, b in rows]
