"""Routing quality of a difficulty scorer: PGR and CPT as the routing data README defines them.

    quality(p) = mean over prompts of (strong_score if routed strong else weak_score)
    PGR(p)     = (quality(p) - weak_mean) / (strong_mean - weak_mean)
    CPT(x)     = smallest share of strong calls reaching PGR >= x

A router at share p sends the round(p * n) highest-scored prompts to the strong model (ties
keep input order, so results are deterministic). Also the labelled-data loader and the
train/held-out split shared by the training tool, the benchmark and the tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "RoutingQuality",
    "RoutingRow",
    "cpt",
    "is_heldout",
    "load_routing_rows",
    "oracle_pgr_curve",
    "pgr_at",
    "pgr_curve",
    "random_pgr_curve",
    "routing_quality",
]


@dataclass(frozen=True, slots=True)
class RoutingRow:
    id: str
    category: str
    prompt: str
    strong: float
    weak: float


def default_routing_data() -> Path:
    """$WILTON_ROUTING_DATA, else the shared/ folder beside the checkout (as CI lays it out)."""
    import os

    env = os.environ.get("WILTON_ROUTING_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    for cand in (repo.parent / "shared" / "data" / "routing_dev.jsonl",
                 Path("/work/shared/data/routing_dev.jsonl")):
        if cand.exists():
            return cand
    return repo.parent / "shared" / "data" / "routing_dev.jsonl"


def load_routing_rows(path: str | Path) -> list[RoutingRow]:
    rows: list[RoutingRow] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.append(
                    RoutingRow(r["id"], r.get("category", ""), r["prompt"],
                               float(r["strong_score"]), float(r["weak_score"]))
                )
    return rows


def is_heldout(row_id: str, share: float = 0.3) -> bool:
    """Stable split by a hash of the id: the same row is held out on every machine and run."""
    h = int.from_bytes(hashlib.sha256(row_id.encode("utf-8")).digest()[:8], "big") / 2**64
    return h >= 1.0 - share


def pgr_curve(scores: Sequence[float], strong: Sequence[float], weak: Sequence[float]) -> list[float]:
    """PGR after routing the k highest-scored prompts to the strong model, for k = 0..n."""
    n = len(scores)
    if not (n == len(strong) == len(weak)) or n == 0:
        raise ValueError("scores, strong and weak must be non-empty and of equal length")
    strong_mean = sum(strong) / n
    weak_mean = sum(weak) / n
    gap = strong_mean - weak_mean
    if gap == 0:
        raise ValueError("strong and weak have the same mean quality: PGR is undefined")
    order = sorted(range(n), key=lambda i: -scores[i])
    curve = [0.0]
    gained = 0.0
    for i in order:
        gained += strong[i] - weak[i]
        curve.append(gained / n / gap)
    return curve


def random_pgr_curve(n: int) -> list[float]:
    """Expected PGR of a random router: exactly the strong share k / n."""
    return [k / n for k in range(n + 1)]


def oracle_pgr_curve(strong: Sequence[float], weak: Sequence[float]) -> list[float]:
    """Weak-wrong-and-strong-right first, harmful routes last."""
    return pgr_curve([s - w for s, w in zip(strong, weak, strict=True)], strong, weak)


def pgr_at(curve: Sequence[float], share: float) -> float:
    n = len(curve) - 1
    return curve[round(share * n)]


def cpt(curve: Sequence[float], target: float) -> float | None:
    """Smallest strong share whose PGR reaches `target`; None when no share does."""
    n = len(curve) - 1
    for k, value in enumerate(curve):
        if value >= target - 1e-12:
            return k / n
    return None


@dataclass(frozen=True, slots=True)
class RoutingQuality:
    pgr_20: float
    pgr_25: float
    pgr_30: float
    cpt_50: float | None
    cpt_80: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def routing_quality(curve: Sequence[float]) -> RoutingQuality:
    return RoutingQuality(
        pgr_20=pgr_at(curve, 0.20),
        pgr_25=pgr_at(curve, 0.25),
        pgr_30=pgr_at(curve, 0.30),
        cpt_50=cpt(curve, 0.5),
        cpt_80=cpt(curve, 0.8),
    )
