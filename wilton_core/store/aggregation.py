"""Pure functions that turn a batch of ledger records into the rows the store writes.

The running aggregates (per-key totals, histogram buckets, failed attempts, per-second rollup)
are computed here, in memory, for one batch: the store then upserts one row per key, so a
batch of 500 records costs a few dozen upserts instead of 500 × 4, and the exporter reads
small tables whose size does not grow with the ledger.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from wilton_core.store.base import LATENCY_BUCKETS
from wilton_core.types import LedgerRecord

__all__ = [
    "LATENCY_BUCKETS",
    "LEDGER_COLUMNS",
    "ROLLUP_BUCKET_S",
    "agg_deltas",
    "bucket_index",
    "failed_attempts",
    "fallback_deltas",
    "hist_deltas",
    "ledger_row",
    "parse_attempt_errors",
    "rollup_bucket",
    "rollup_deltas",
]

# Width of a ledger_rollup bucket. phi_window reads whole buckets from the rollup and only the
# partial buckets at the window's two edges from the ledger itself.
ROLLUP_BUCKET_S = 1

LEDGER_COLUMNS: tuple[str, ...] = (
    "ts", "request_id", "model_id", "tier", "is_local", "provider", "intent", "difficulty",
    "latency_s", "ttft_s", "tokens_in", "tokens_out", "cost_usd", "status", "error_class",
    "fallbacks", "tried", "stream", "replica", "attempt_errors", "http_status", "key_id", "local_only",
    "audio_s", "chars",  # voice bridge, migration 0006
)

# voice bridge: the ledger intents of audio requests (speech to text, text to speech)
AUDIO_INTENTS = frozenset({"stt", "tts"})
# ...and the latency-target stage (LatencyTargets) each one's latency histogram is kept under
AUDIO_STAGES = {"stt": "stt", "tts": "tts_generate"}

AggKey = tuple[str, str, str, str, str, str]
HistKey = tuple[str, str, str, float]


def ledger_row(r: LedgerRecord) -> tuple[Any, ...]:
    """The ledger row for a record, in LEDGER_COLUMNS order (booleans as 0/1 for both dialects)."""
    return (
        r.ts, r.request_id, r.model_id, r.tier, int(bool(r.is_local)), r.provider, r.intent,
        r.difficulty, r.latency_s, r.ttft_s, r.tokens_in, r.tokens_out, r.cost_usd, r.status,
        r.error_class, r.fallbacks, r.tried, int(bool(r.stream)), r.replica, r.attempt_errors,
        r.http_status, r.key_id, int(bool(r.local_only)),
        r.audio_s, r.chars,
    )


def bucket_index(value: float) -> int:
    """Index of the smallest bucket whose upper bound holds `value` (NaN lands in +Inf)."""
    for i, le in enumerate(LATENCY_BUCKETS):
        if value <= le:
            return i
    return len(LATENCY_BUCKETS) - 1


def agg_deltas(records: Iterable[LedgerRecord]) -> dict[AggKey, list[Any]]:
    """Per ledger_agg key: [requests, tokens_in, tokens_out, cost_usd, latency_sum_s,
    ttft_sum_s, ttft_count, fallbacks] summed over the batch."""
    out: dict[AggKey, list[Any]] = {}
    for r in records:
        key = (r.tier, r.model_id, r.provider, r.intent or "", r.status, r.error_class or "")
        acc = out.get(key)
        if acc is None:
            acc = out[key] = [0, 0, 0, 0.0, 0.0, 0.0, 0, 0]
        acc[0] += 1
        acc[1] += r.tokens_in
        acc[2] += r.tokens_out
        acc[3] += r.cost_usd
        acc[4] += r.latency_s
        if r.ttft_s is not None:
            acc[5] += r.ttft_s
            acc[6] += 1
        acc[7] += r.fallbacks
    return out


def hist_deltas(records: Iterable[LedgerRecord]) -> dict[HistKey, int]:
    """Per (tier, model_id, kind, le): how much the CUMULATIVE count (observations <= le) grows.

    Every bucket of a touched (tier, model_id, kind) appears, even with 0, so that the table
    always holds complete histograms (a reader never has to fill gaps).
    """
    per_bucket: dict[tuple[str, str, str], list[int]] = {}
    for r in records:
        # voice bridge: an audio request's latency is its stage's (stt, tts_generate), not chat's
        obs: list[tuple[str, float]] = [(AUDIO_STAGES.get(r.intent or "", "latency"), r.latency_s)]
        if r.ttft_s is not None:
            obs.append(("ttft", r.ttft_s))
        for kind, value in obs:
            counts = per_bucket.get((r.tier, r.model_id, kind))
            if counts is None:
                counts = per_bucket[(r.tier, r.model_id, kind)] = [0] * len(LATENCY_BUCKETS)
            counts[bucket_index(value)] += 1
    out: dict[HistKey, int] = {}
    for (tier, model_id, kind), counts in per_bucket.items():
        running = 0
        for le, n in zip(LATENCY_BUCKETS, counts, strict=True):
            running += n
            out[(tier, model_id, kind, le)] = running
    return out


def parse_attempt_errors(text: str) -> list[tuple[str, str]]:
    """"m1:unavailable,org/m2:7b:rate_limited" -> [(m1, unavailable), (org/m2:7b, rate_limited)].

    Model ids may contain ":" but never ","; the kind is after the LAST ":".
    """
    out: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        model, sep, kind = item.rpartition(":")
        if not sep or not model:
            out.append((item, "unknown"))
        else:
            out.append((model, kind or "unknown"))
    return out


def failed_attempts(r: LedgerRecord) -> list[tuple[str, str]]:
    """Every failed model call behind one record, as (model_id, reason).

    The attempts before `model_id` come from `attempt_errors` (or from `tried` with reason
    "unknown" when the router did not say why); the record's own model counts too when the
    request finally failed on it with a provider error.
    """
    attempts = parse_attempt_errors(r.attempt_errors)
    if not attempts and r.tried:
        attempts = [(m.strip(), "unknown") for m in r.tried.split(",") if m.strip()]
    if r.status != "ok" and r.model_id and r.error_class and r.error_class != "no_healthy_model":
        attempts.append((r.model_id, r.error_class))
    return attempts


def fallback_deltas(records: Iterable[LedgerRecord]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for r in records:
        for key in failed_attempts(r):
            out[key] = out.get(key, 0) + 1
    return out


def rollup_bucket(ts: float) -> int:
    return math.floor(ts / ROLLUP_BUCKET_S) * ROLLUP_BUCKET_S


def rollup_deltas(records: Sequence[LedgerRecord]) -> dict[tuple[int, int], list[Any]]:
    """Per (bucket_ts, is_local): [served requests, served tokens, errors, cost_usd].

    A request no model could serve (status "error") counts as an error only: phi is the local
    share of SERVED requests, so an outage shows as errors, not as API traffic.
    """
    out: dict[tuple[int, int], list[Any]] = {}
    for r in records:
        if r.intent in AUDIO_INTENTS:
            continue  # voice bridge: audio requests are not in the chat phi window (docs/voice.md)
        key = (rollup_bucket(r.ts), int(bool(r.is_local)))
        acc = out.get(key)
        if acc is None:
            acc = out[key] = [0, 0, 0, 0.0]
        served = r.status != "error"
        acc[0] += served
        acc[1] += (r.tokens_in + r.tokens_out) if served else 0
        acc[2] += r.status != "ok"
        acc[3] += r.cost_usd
    return out
