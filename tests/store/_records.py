"""Random ledger records and a brute-force reading of them, independent of the store's own code."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from wilton_core.store import LATENCY_BUCKETS
from wilton_core.types import LedgerRecord

MODELS = [
    ("llama3:8b", "selfhost", True, "ollama"),
    ("org/qwen:7b", "selfhost", True, "openai"),
    ("groq-8b", "edge", False, "openai"),
    ("gpt-4o", "frontier", False, "openai"),
]
KINDS = ["rate_limited", "unavailable", "auth", "bad_request"]


@dataclass
class Generated:
    records: list[LedgerRecord] = field(default_factory=list)
    attempts: list[list[tuple[str, str]]] = field(default_factory=list)  # failed attempts per record


def generate(n: int, *, seed: int, t0: float = 1_700_000_000.0, span_s: float = 30.0) -> Generated:
    rng = random.Random(seed)
    out = Generated()
    for i in range(n):
        model, tier, local, provider = rng.choice(MODELS)
        status = rng.choices(["ok", "error", "stream_error"], [8, 1, 1])[0]
        error_class = None if status == "ok" else rng.choice([*KINDS, "no_healthy_model"])
        before = rng.sample([m[0] for m in MODELS if m[0] != model], rng.choice([0, 0, 0, 1, 2]))
        pre = [(m, rng.choice(KINDS)) for m in before]
        explained = rng.random() < 0.8
        attempts = list(pre) if explained else [(m, "unknown") for m in before]
        if status != "ok" and error_class and error_class != "no_healthy_model":
            attempts.append((model, error_class))
        latency = rng.choice([0.001, 0.005, 0.0051, 0.3, 1.0, 2.2, 45.0, 120.0, rng.random() * 3])
        ttft = None if rng.random() < 0.4 else latency * rng.random()
        out.records.append(
            LedgerRecord(
                # some exactly on second boundaries: the rollup's bucket edges
                ts=t0 + (rng.randint(0, int(span_s)) if rng.random() < 0.15 else rng.random() * span_s),
                request_id=f"{seed}-{i}",
                model_id=model,
                tier=tier,
                is_local=local,
                provider=provider,
                intent=rng.choice([None, "chat", "code"]),
                difficulty=None if rng.random() < 0.1 else rng.random(),
                latency_s=latency,
                ttft_s=ttft,
                tokens_in=rng.randint(0, 2000),
                tokens_out=rng.randint(0, 800),
                cost_usd=0.0 if local else rng.random() / 100,
                status=status,
                error_class=error_class,
                fallbacks=len(before),
                tried=",".join(before),
                stream=rng.random() < 0.5,
                replica=rng.choice(["r1", "r2"]),
                attempt_errors=",".join(f"{m}:{k}" for m, k in pre) if explained else "",
            )
        )
        out.attempts.append(attempts)
    return out


def brute_agg(records: list[LedgerRecord]) -> dict[tuple[str, ...], list[Any]]:
    out: dict[tuple[str, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0.0, 0.0, 0.0, 0, 0])
    for r in records:
        a = out[(r.tier, r.model_id, r.provider, r.intent or "", r.status, r.error_class or "")]
        a[0] += 1
        a[1] += r.tokens_in
        a[2] += r.tokens_out
        a[3] += r.cost_usd
        a[4] += r.latency_s
        a[5] += r.ttft_s or 0.0
        a[6] += r.ttft_s is not None
        a[7] += r.fallbacks
    return dict(out)


def brute_hist(records: list[LedgerRecord]) -> dict[tuple[str, str, str], list[int]]:
    """Cumulative counts per LATENCY_BUCKETS bound."""
    out: dict[tuple[str, str, str], list[int]] = {}
    for r in records:
        for kind, v in (("latency", r.latency_s), ("ttft", r.ttft_s)):
            if v is None:
                continue
            counts = out.setdefault((r.tier, r.model_id, kind), [0] * len(LATENCY_BUCKETS))
            for i, le in enumerate(LATENCY_BUCKETS):
                if v <= le or math.isinf(le):
                    counts[i] += 1
    return out


def brute_fallbacks(gen: Generated) -> Counter[tuple[str, str]]:
    c: Counter[tuple[str, str]] = Counter()
    for attempts in gen.attempts:
        c.update(attempts)
    return c


def brute_window(records: list[LedgerRecord], since: float, until: float) -> tuple[int, int, int, int, int]:
    inside = [r for r in records if since <= r.ts < until]
    served = [r for r in inside if r.status != "error"]  # phi counts what a model served
    return (
        len(served),
        sum(r.is_local for r in served),
        sum(r.tokens_in + r.tokens_out for r in served),
        sum(r.tokens_in + r.tokens_out for r in served if r.is_local),
        sum(r.status != "ok" for r in inside),
    )
