"""Snapshot -> Prometheus metric families: a pure function, no I/O.

Label values come only from bounded sets (configured model ids, tiers, providers, intents,
statuses, error classes, replicas); nothing per request ever becomes a label.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from wilton_core.exporter.catalogue import spec
from wilton_core.exporter.snapshot import Snapshot
from wilton_core.store.base import LATENCY_BUCKETS, HistogramRow

__all__ = ["ExportOptions", "build_families", "histogram_quantile", "static_families"]


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What the exporter knows from config rather than from the store."""

    latency_targets: Mapping[str, float] = field(default_factory=dict)
    phi_target_default: float = 0.75
    window_s: float = 300.0
    api_budget_usd_per_hour: float | None = None


def _counter(name: str) -> CounterMetricFamily:
    s = spec(name)
    return CounterMetricFamily(name, s.help, labels=list(s.labels))


def _gauge(name: str, value: float | None = None) -> GaugeMetricFamily:
    s = spec(name)
    if value is not None:
        return GaugeMetricFamily(name, s.help, value=value)
    return GaugeMetricFamily(name, s.help, labels=list(s.labels))


def _fmt_le(le: float) -> str:
    return "+Inf" if math.isinf(le) else repr(float(le))


def histogram_quantile(q: float, buckets: list[tuple[float, int]]) -> float | None:
    """Prometheus' estimate: linear interpolation inside the bucket holding the q-th observation.

    `buckets` are (le, cumulative count) sorted by le, the last one +Inf.
    """
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le  # as Prometheus: the upper bound of the last finite bucket
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def _traffic(snap: Snapshot) -> Iterator[Metric]:
    requests = _counter("wilton_requests")
    errors = _counter("wilton_request_errors")
    tokens = _counter("wilton_tokens")
    cost = _counter("wilton_cost_usd")
    req_key: dict[tuple[str, ...], float] = defaultdict(float)
    err_key: dict[tuple[str, ...], float] = defaultdict(float)
    tok_key: dict[tuple[str, ...], float] = defaultdict(float)
    cost_key: dict[tuple[str, ...], float] = defaultdict(float)
    for a in snap.aggregates.ledger:
        req_key[(a.tier, a.model_id, a.provider, a.intent or "none", a.status)] += a.requests
        if a.status != "ok" or a.error_class:
            err_key[(a.tier, a.model_id, a.provider, a.error_class or "unknown")] += a.requests
        tok_key[(a.tier, a.model_id, "in")] += a.tokens_in
        tok_key[(a.tier, a.model_id, "out")] += a.tokens_out
        cost_key[(a.tier, a.model_id)] += a.cost_usd
    for fam, values in ((requests, req_key), (errors, err_key), (tokens, tok_key), (cost, cost_key)):
        for k, v in sorted(values.items()):
            fam.add_metric(list(k), v)
        yield fam

    fallbacks = _counter("wilton_fallbacks")
    for f in sorted(snap.aggregates.fallbacks, key=lambda f: (f.model_id, f.reason)):
        fallbacks.add_metric([f.model_id, f.reason], f.count)
    yield fallbacks
    # fallback_agg counts every failed attempt, the final one included, so it alone is complete
    rl = _counter("wilton_rate_limit_hits")
    for model, n in sorted(snap.aggregates.rate_limit_hits().items()):
        rl.add_metric([model], n)
    yield rl


def _normalised(buckets: Iterable[tuple[float, int]]) -> list[tuple[float, int]]:
    """Every standard bound, sorted, never decreasing, ending with +Inf.

    Prometheus sums histograms bucket by bucket (`sum by (le)`), so every series must carry the
    same full set of bounds; a store that only holds the buckets that saw observations is
    expanded here (a bound's cumulative count is that of the largest stored bound below it).
    """
    stored = sorted(buckets)
    bounds = sorted(set(LATENCY_BUCKETS) | {le for le, _ in stored} | {math.inf})
    out: list[tuple[float, int]] = []
    running, j = 0, 0
    for le in bounds:
        while j < len(stored) and stored[j][0] <= le:
            running = max(running, stored[j][1])  # a torn read must never make a bucket shrink
            j += 1
        out.append((le, running))
    return out


def _merge(hists: Iterable[HistogramRow]) -> list[tuple[float, int]]:
    """One cumulative bucket list summing several histograms, even when their bounds differ."""
    lists = [_normalised(h.buckets) for h in hists]
    bounds = sorted({le for b in lists for le, _ in b})
    out = []
    for le in bounds:
        # a histogram's cumulative count at `le` is that of its largest bound <= le
        out.append((le, sum(max((c for b_le, c in b if b_le <= le), default=0) for b in lists)))
    return out


def _histograms(snap: Snapshot, opts: ExportOptions) -> Iterator[Metric]:
    fams = {
        kind: HistogramMetricFamily(name, spec(name).help, labels=["tier", "model"])
        for kind, name in (("latency", "wilton_request_latency_seconds"), ("ttft", "wilton_request_ttft_seconds"))
    }
    llm: list[HistogramRow] = []
    voice: dict[str, list[HistogramRow]] = {"stt": [], "tts_generate": []}  # voice bridge stages
    for h in sorted(snap.aggregates.histograms, key=lambda h: (h.kind, h.tier, h.model_id)):
        if h.kind in voice and h.buckets:
            voice[h.kind].append(h)
        fam = fams.get(h.kind)
        if fam is None or not h.buckets:
            continue
        buckets = _normalised(h.buckets)
        fam.add_metric([h.tier, h.model_id], [(_fmt_le(le), c) for le, c in buckets], sum_value=h.sum)
        if h.kind == "latency":
            llm.append(h)
    yield from fams.values()

    targets = _gauge("wilton_latency_target_seconds")
    for stage, value in sorted(opts.latency_targets.items()):
        targets.add_metric([stage], value)
    yield targets
    p95 = _gauge("wilton_stage_latency_p95_seconds")
    llm_p95 = histogram_quantile(0.95, _merge(llm))
    if llm_p95 is not None:
        p95.add_metric(["llm"], llm_p95)
    for stage, rows in voice.items():
        if (v := histogram_quantile(0.95, _merge(rows))) is not None:
            p95.add_metric([stage], v)
    yield p95


def _health(snap: Snapshot) -> Iterator[Metric]:
    healthy = _gauge("wilton_model_healthy")
    cooldown = _gauge("wilton_model_cooldown_remaining_seconds")
    failures = _gauge("wilton_model_consecutive_failures")
    published = _gauge("wilton_router_health_timestamp_seconds")
    pending = _gauge("wilton_ledger_pending_records")
    dropped = _counter("wilton_ledger_dropped_records")
    for replica, doc in sorted(snap.router_health.items()):
        ts = _num(doc.get("ts"))
        if ts is not None:
            published.add_metric([replica], ts)
        models = doc.get("models")
        for model, h in sorted(models.items()) if isinstance(models, dict) else ():
            # a model without its API key is never routed to: not "down", just not there
            if not isinstance(h, dict) or h.get("configured") is False:
                continue
            healthy.add_metric([replica, model], 1.0 if h.get("healthy") else 0.0)
            until = _num(h.get("cooldown_until")) or 0.0
            cooldown.add_metric([replica, model], max(0.0, until - snap.now))
            failures.add_metric([replica, model], _num(h.get("consecutive_failures")) or 0.0)
        ledger = doc.get("ledger")
        if isinstance(ledger, dict):
            if (v := _num(ledger.get("pending"))) is not None:
                pending.add_metric([replica], v)
            if (v := _num(ledger.get("dropped"))) is not None:
                dropped.add_metric([replica], v)
    yield from (healthy, cooldown, failures, published, pending, dropped)

    status = _gauge("wilton_model_test_status")
    latency = _gauge("wilton_model_test_latency_seconds")
    tested = _gauge("wilton_model_tested_timestamp_seconds")
    for m in sorted(snap.model_status, key=lambda m: m.model_id):
        status.add_metric([m.model_id, m.status], 1.0)
        if m.latency_ms is not None:
            latency.add_metric([m.model_id], m.latency_ms / 1000.0)
        if m.tested_at is not None:
            tested.add_metric([m.model_id], m.tested_at)
    yield from (status, latency, tested)


def _balance(snap: Snapshot, opts: ExportOptions) -> Iterator[Metric]:
    yield _gauge("wilton_window_seconds", opts.window_s)
    w = snap.window
    if w is not None:
        phi = _gauge("wilton_phi_measured")
        for basis in ("requests", "tokens"):
            value = w.phi(basis)
            if value is not None:
                phi.add_metric([basis], value)
        yield phi
        reqs = _gauge("wilton_window_requests")
        reqs.add_metric(["local"], w.local_requests)
        reqs.add_metric(["api"], w.api_requests)
        yield reqs
        toks = _gauge("wilton_window_tokens")
        toks.add_metric(["local"], w.local_tokens)
        toks.add_metric(["api"], w.api_tokens)
        yield toks
        if w.last_bucket_ts is not None:
            yield _gauge("wilton_ledger_last_bucket_timestamp_seconds", w.last_bucket_ts)

    c = snap.control
    yield _gauge("wilton_phi_target", c.phi_target if c is not None else opts.phi_target_default)
    if c is not None:
        yield _gauge("wilton_controller_threshold", c.threshold)
        yield _gauge("wilton_controller_bias", c.bias)
        if c.measured_phi is not None:
            yield _gauge("wilton_control_measured_phi", c.measured_phi)
        if c.error is not None:
            yield _gauge("wilton_control_error", c.error)
        steps = CounterMetricFamily("wilton_control_steps", spec("wilton_control_steps").help, value=c.steps)
        yield steps
        if c.updated_at:
            yield _gauge("wilton_control_updated_timestamp_seconds", c.updated_at)
    if opts.api_budget_usd_per_hour is not None:
        yield _gauge("wilton_api_spend_budget_usd_per_hour", opts.api_budget_usd_per_hour)


def _insight(snap: Snapshot) -> Iterator[Metric]:
    runs = _counter("wilton_insight_runs")
    doc = snap.insight or {}
    runs.add_metric(["ok"], _num(doc.get("runs_ok")) or 0.0)
    runs.add_metric(["failed"], _num(doc.get("runs_failed")) or 0.0)
    yield runs
    ts = _num(doc.get("ts"))
    if ts is not None:
        yield _gauge("wilton_insight_last_run_timestamp_seconds", ts)
    last_ok = _num(doc.get("last_success_ts"))
    if last_ok is None and doc.get("ok") is True:
        last_ok = ts
    if last_ok is not None:
        yield _gauge("wilton_insight_last_success_timestamp_seconds", last_ok)


def _keys(snap: Snapshot) -> Iterator[Metric]:
    spend = _counter("wilton_key_spend_usd")
    requests = _counter("wilton_key_requests")
    tokens = _counter("wilton_key_tokens")
    budget = _gauge("wilton_key_budget_usd")
    period = _gauge("wilton_key_period_spend_usd")
    local = _counter("wilton_local_only_requests")
    for k in snap.keys:
        name = k.name or "(none)"
        local.add_metric([name], k.local_only)
        if not k.name:
            continue
        spend.add_metric([name], k.cost_usd)
        requests.add_metric([name, "admitted"], k.requests - k.refused)
        requests.add_metric([name, "refused"], k.refused)
        tokens.add_metric([name], k.tokens)
        if k.budget_usd is not None:
            budget.add_metric([name, k.budget_period], k.budget_usd)
            period.add_metric([name], k.period_cost_usd or 0.0)
    yield from (spend, requests, tokens, budget, period, local)


def _shadow(snap: Snapshot) -> Iterator[Metric]:
    """Shadow judging's counts as each router replica published them (bounded label sets only)."""
    from wilton_core.core.shadow import FAIL_STAGES, SKIP_REASONS

    plain = {key: _counter(name) for key, name in (
        ("sampled", "wilton_shadow_sampled"), ("judged", "wilton_shadow_judged"),
        ("judge_unparsable", "wilton_shadow_judge_unparsable"), ("spend_usd", "wilton_shadow_spend_usd"))}
    gauges = {"in_flight": _gauge("wilton_shadow_in_flight"), "budget_spent_usd": _gauge("wilton_shadow_hour_spend_usd")}
    skipped, failed = _counter("wilton_shadow_skipped"), _counter("wilton_shadow_failed")
    for replica, doc in sorted(snap.router_health.items()):
        sh = doc.get("shadow")
        if not isinstance(sh, dict):
            continue  # shadow judging is off on that replica
        for key, fam in (*plain.items(), *gauges.items()):
            if (v := _num(sh.get(key))) is not None:
                fam.add_metric([replica], v)
        for fam, field_, allowed in ((skipped, "skipped", SKIP_REASONS), (failed, "failed", FAIL_STAGES)):
            counts = sh.get(field_)
            for label in allowed:
                if isinstance(counts, dict) and (v := _num(counts.get(label))) is not None:
                    fam.add_metric([replica, label], v)
    yield from (*plain.values(), skipped, failed, *gauges.values())


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def build_families(snap: Snapshot, opts: ExportOptions) -> list[Metric]:
    """Every store-derived family for one scrape, in a stable order."""
    out: list[Metric] = []
    out.extend(_traffic(snap))
    out.extend(_histograms(snap, opts))
    out.extend(_health(snap))
    out.extend(_balance(snap, opts))
    out.extend(_insight(snap))
    out.extend(_keys(snap))
    out.extend(_shadow(snap))
    return out


def static_families(opts: ExportOptions) -> list[Metric]:
    """What the exporter can still say when the store is unreachable: config, not data."""
    targets = _gauge("wilton_latency_target_seconds")
    for stage, value in sorted(opts.latency_targets.items()):
        targets.add_metric([stage], value)
    out: list[Metric] = [targets, _gauge("wilton_window_seconds", opts.window_s)]
    if opts.api_budget_usd_per_hour is not None:
        out.append(_gauge("wilton_api_spend_budget_usd_per_hour", opts.api_budget_usd_per_hour))
    return out
