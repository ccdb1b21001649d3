"""What a batch did, per tier and model: counts, share, latency p50/p95, tokens, cost, and phi.

Pure: plain results in, plain numbers out. phi here is the share of the batch's *answered*
tasks that local models served (errors answered by no one are counted apart).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wilton_core.hpc.model import TaskResult

__all__ = ["BatchSummary", "GroupSummary", "percentile", "summarize"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(slots=True, frozen=True)
class GroupSummary:
    tier: str
    model: str
    is_local: bool
    count: int
    share: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float


@dataclass(slots=True, frozen=True)
class BatchSummary:
    groups: list[GroupSummary]
    total: int
    ok: int
    errors: int
    pending: int
    phi: float | None
    cost_usd: float
    tokens: int
    error_kinds: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "total": self.total, "ok": self.ok, "errors": self.errors, "pending": self.pending,
            "phi": self.phi, "cost_usd": self.cost_usd, "tokens": self.tokens, "error_kinds": self.error_kinds,
            "groups": [
                {"tier": g.tier, "model": g.model, "is_local": g.is_local, "count": g.count, "share": g.share,
                 "latency_p50_s": g.latency_p50_s, "latency_p95_s": g.latency_p95_s,
                 "tokens_in": g.tokens_in, "tokens_out": g.tokens_out, "cost_usd": g.cost_usd}
                for g in self.groups
            ],
        }


def _error_kind(r: TaskResult) -> str:
    """`HTTP 400 no_capable_model`: the status and, when the router gave one, its error code."""
    if not r.http_status:
        return (r.error or "error").split(":", 1)[0]
    parts = (r.error or "").split(":", 2)  # "HTTP 400: code: message" (runner._error_message)
    code = parts[1].strip() if len(parts) == 3 else ""
    return f"HTTP {r.http_status} {code}" if code and " " not in code else f"HTTP {r.http_status}"


def summarize(results: Iterable[TaskResult]) -> BatchSummary:
    """Group answered tasks by (tier, model); `share` is over answered tasks."""
    rows = list(results)
    done = [r for r in rows if r.status == "ok"]
    failed = [r for r in rows if r.status == "error"]
    pending = len(rows) - len(done) - len(failed)
    by_key: dict[tuple[str, str], list[TaskResult]] = {}
    for r in done:
        by_key.setdefault((r.tier or "?", r.model_id or "?"), []).append(r)
    tier_order = {"selfhost": 0, "edge": 1, "frontier": 2}
    groups = []
    for (tier, model), rs in sorted(by_key.items(), key=lambda kv: (tier_order.get(kv[0][0], 9), kv[0][1])):
        lat = [r.latency_s for r in rs]
        groups.append(GroupSummary(
            tier=tier, model=model, is_local=bool(rs[0].is_local), count=len(rs), share=len(rs) / len(done),
            latency_p50_s=percentile(lat, 0.5), latency_p95_s=percentile(lat, 0.95),
            tokens_in=sum(r.tokens_in for r in rs), tokens_out=sum(r.tokens_out for r in rs),
            cost_usd=sum(r.cost_usd for r in rs)))
    kinds: dict[str, int] = {}
    for r in failed:
        k = _error_kind(r)
        kinds[k] = kinds.get(k, 0) + 1
    local = sum(1 for r in done if r.is_local)
    return BatchSummary(
        groups=groups, total=len(rows), ok=len(done), errors=len(failed), pending=pending,
        phi=local / len(done) if done else None, cost_usd=sum(r.cost_usd for r in done),
        tokens=sum(r.tokens_in + r.tokens_out for r in done), error_kinds=kinds)
