"""The pure batch -> aggregate-rows functions."""

from __future__ import annotations

import math

from wilton_core.store.aggregation import (
    LATENCY_BUCKETS,
    LEDGER_COLUMNS,
    agg_deltas,
    bucket_index,
    failed_attempts,
    fallback_deltas,
    hist_deltas,
    ledger_row,
    parse_attempt_errors,
    rollup_bucket,
    rollup_deltas,
)
from wilton_core.types import LedgerRecord


def rec(**kw: object) -> LedgerRecord:
    base: dict[str, object] = dict(ts=10.5, request_id="r", model_id="m", tier="selfhost", is_local=True,
                                   provider="ollama")
    base.update(kw)
    return LedgerRecord(**base)  # type: ignore[arg-type]


def test_buckets_are_the_agreed_constant() -> None:
    assert (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, 60, math.inf) == LATENCY_BUCKETS


def test_bucket_index_edges() -> None:
    assert bucket_index(0.0) == 0
    assert bucket_index(0.005) == 0          # le is inclusive, as in Prometheus
    assert bucket_index(0.0050001) == 1
    assert bucket_index(60.0) == 13
    assert bucket_index(60.1) == 14
    assert bucket_index(math.nan) == 14


def test_hist_deltas_are_cumulative_and_complete() -> None:
    d = hist_deltas([rec(latency_s=0.3, ttft_s=0.02), rec(latency_s=0.001), rec(latency_s=100.0)])
    lat = [d[("selfhost", "m", "latency", le)] for le in LATENCY_BUCKETS]
    assert lat == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3]
    ttft = [d[("selfhost", "m", "ttft", le)] for le in LATENCY_BUCKETS]
    assert ttft == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert len(d) == 2 * len(LATENCY_BUCKETS)


def test_agg_deltas_use_empty_strings_for_missing_keys() -> None:
    d = agg_deltas([
        rec(tokens_in=3, tokens_out=4, cost_usd=0.5, latency_s=1.0, ttft_s=0.25, fallbacks=2),
        rec(tokens_in=1, latency_s=2.0),
        rec(intent="code", status="error", error_class="unavailable"),
    ])
    assert d[("selfhost", "m", "ollama", "", "ok", "")] == [2, 4, 4, 0.5, 3.0, 0.25, 1, 2]
    assert d[("selfhost", "m", "ollama", "code", "error", "unavailable")][0] == 1


def test_parse_attempt_errors() -> None:
    assert parse_attempt_errors("") == []
    assert parse_attempt_errors("a:rate_limited, org/q:7b:unavailable,,x") == [
        ("a", "rate_limited"), ("org/q:7b", "unavailable"), ("x", "unknown"),
    ]


def test_failed_attempts_and_fallback_deltas() -> None:
    explained = rec(tried="a,b", attempt_errors="a:rate_limited,b:auth", fallbacks=2)
    unexplained = rec(tried="a", fallbacks=1)
    failed_here = rec(model_id="z", status="error", error_class="unavailable", tried="a",
                      attempt_errors="a:rate_limited")
    nobody = rec(model_id="", status="error", error_class="no_healthy_model", tried="a",
                 attempt_errors="a:unavailable")
    assert failed_attempts(explained) == [("a", "rate_limited"), ("b", "auth")]
    assert failed_attempts(unexplained) == [("a", "unknown")]
    assert failed_attempts(failed_here) == [("a", "rate_limited"), ("z", "unavailable")]
    assert failed_attempts(nobody) == [("a", "unavailable")]
    assert fallback_deltas([explained, unexplained, failed_here, nobody]) == {
        ("a", "rate_limited"): 2, ("b", "auth"): 1, ("a", "unknown"): 1, ("z", "unavailable"): 1,
        ("a", "unavailable"): 1,
    }


def test_rollup() -> None:
    assert rollup_bucket(10.999) == 10 and rollup_bucket(11.0) == 11 and rollup_bucket(-0.5) == -1
    d = rollup_deltas([
        rec(ts=10.2, tokens_in=2, tokens_out=3),
        rec(ts=10.9, is_local=False, cost_usd=0.25, status="error"),
        rec(ts=11.0),
    ])
    # the unserved request (status error) is an error, not an API request
    assert d == {(10, 1): [1, 5, 0, 0.0], (10, 0): [0, 0, 1, 0.25], (11, 1): [1, 0, 0, 0.0]}


def test_ledger_row_matches_columns() -> None:
    r = rec(stream=True, attempt_errors="a:auth")
    row = dict(zip(LEDGER_COLUMNS, ledger_row(r), strict=True))
    assert row["is_local"] == 1 and row["stream"] == 1 and row["attempt_errors"] == "a:auth"
    # every field is a ledger column, except the opt-in prompt text (request_prompts, never the ledger)
    assert set(LEDGER_COLUMNS) == set(LedgerRecord.__dataclass_fields__) - {"prompt"}
