"""StoreCollector over a real SQLite store: values, failure handling, bounded reads, promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from wilton_core.exporter.catalogue import METRICS, exposed_names
from wilton_core.exporter.collector import StoreCollector
from wilton_core.exporter.families import ExportOptions
from wilton_core.store.sqlite import SqliteStore

from .conftest import NOW, fill

OPTS = ExportOptions(latency_targets={"stt": 0.8, "llm": 2.0, "tts_generate": 3.0, "tts_playback": 0.5},
                     window_s=300.0, api_budget_usd_per_hour=1.0)


def _registry(store: Any, **kw: Any) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(StoreCollector(store, OPTS, clock=lambda: NOW, **kw))
    return reg


def test_values_from_a_real_store(store: SqliteStore) -> None:
    fill(store, 400)
    g = _registry(store).get_sample_value
    assert g("wilton_requests_total", {"tier": "selfhost", "model": "local-small", "provider": "openai",
                                       "intent": "chat", "status": "ok"}) == 300
    assert g("wilton_requests_total", {"tier": "frontier", "model": "gpt-4o", "provider": "openai",
                                       "intent": "code", "status": "ok"}) == 50
    assert g("wilton_request_errors_total", {"tier": "edge", "model": "groq-llama-8b", "provider": "openai",
                                             "error_class": "unavailable"}) == 50
    assert g("wilton_tokens_total", {"tier": "frontier", "model": "gpt-4o", "direction": "out"}) == 50 * 200
    assert g("wilton_cost_usd_total", {"tier": "frontier", "model": "gpt-4o"}) == pytest.approx(50 * 0.00225)
    assert g("wilton_request_latency_seconds_count", {"tier": "selfhost", "model": "local-small"}) == 300
    assert g("wilton_request_latency_seconds_sum", {"tier": "selfhost", "model": "local-small"}) == pytest.approx(90)
    assert g("wilton_request_latency_seconds_bucket",
             {"tier": "frontier", "model": "gpt-4o", "le": "2.5"}) == 0
    assert g("wilton_request_latency_seconds_bucket",
             {"tier": "frontier", "model": "gpt-4o", "le": "5.0"}) == 50
    assert g("wilton_request_ttft_seconds_count", {"tier": "selfhost", "model": "local-small"}) == 300
    assert g("wilton_fallbacks_total", {"model": "groq-llama-8b", "reason": "rate_limited"}) == 50
    assert g("wilton_fallbacks_total", {"model": "groq-llama-8b", "reason": "unavailable"}) == 50
    assert g("wilton_rate_limit_hits_total", {"model": "groq-llama-8b"}) == 50
    # 300 local of 400 in the last 40 s: all inside the 300 s window
    assert g("wilton_phi_measured", {"basis": "requests"}) == pytest.approx(0.75)
    assert g("wilton_window_requests", {"locality": "api"}) == 100
    assert g("wilton_phi_target") == 0.75
    assert g("wilton_controller_threshold") == 0.6
    assert g("wilton_control_steps_total") == 17
    assert g("wilton_model_healthy", {"replica": "r1", "model": "groq-llama-8b"}) == 0
    assert g("wilton_model_cooldown_remaining_seconds", {"replica": "r1", "model": "groq-llama-8b"}) == 8
    assert g("wilton_model_test_status", {"model": "local-small", "status": "available"}) == 1
    assert g("wilton_insight_last_success_timestamp_seconds") == NOW - 600
    assert g("wilton_latency_target_seconds", {"stage": "tts_playback"}) == 0.5
    # 300 at 0.3 s, 50 at 1.2 s, 50 at 3.0 s: the 380th observation is in (2.5, 5.0]
    p95 = g("wilton_stage_latency_p95_seconds", {"stage": "llm"})
    assert p95 is not None and 2.5 < p95 <= 5.0
    assert g("wilton_exporter_store_up") == 1
    assert g("wilton_exporter_scrape_errors_total") == 0
    dur = g("wilton_exporter_scrape_duration_seconds")
    assert dur is not None and 0 < dur < 5


def test_window_excludes_old_rows(store: SqliteStore) -> None:
    from .conftest import ledger_batch

    store.insert_ledger(ledger_batch(40, now=NOW - 10_000))  # far outside the window
    store.insert_ledger(ledger_batch(8, now=NOW))
    g = _registry(store).get_sample_value
    assert g("wilton_window_requests", {"locality": "local"}) == 6
    assert g("wilton_window_requests", {"locality": "api"}) == 2
    assert g("wilton_requests_total", {"tier": "selfhost", "model": "local-small", "provider": "openai",
                                       "intent": "chat", "status": "ok"}) == 36


def test_counters_follow_new_batches(store: SqliteStore) -> None:
    from .conftest import ledger_batch

    reg = _registry(store)
    labels = {"tier": "selfhost", "model": "local-small", "provider": "openai", "intent": "chat", "status": "ok"}
    assert reg.get_sample_value("wilton_requests_total", labels) is None
    store.insert_ledger(ledger_batch(4))
    assert reg.get_sample_value("wilton_requests_total", labels) == 3
    store.insert_ledger(ledger_batch(4, start=4))
    assert reg.get_sample_value("wilton_requests_total", labels) == 6


def test_store_failure_becomes_metrics_not_an_error(store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    fill(store, 8)
    reg = _registry(store)
    assert reg.get_sample_value("wilton_exporter_store_up") == 1
    store.close()  # every read now raises StoreError
    assert reg.get_sample_value("wilton_exporter_store_up") == 0
    assert reg.get_sample_value("wilton_exporter_scrape_errors_total") == 2  # get_sample_value collects twice
    assert reg.get_sample_value("wilton_latency_target_seconds", {"stage": "llm"}) == 2.0
    assert reg.get_sample_value("wilton_api_spend_budget_usd_per_hour") == 1.0
    assert reg.get_sample_value("wilton_requests_total", {"tier": "selfhost", "model": "local-small",
                                                         "provider": "openai", "intent": "chat",
                                                         "status": "ok"}) is None
    assert "StoreError" in caplog.text and "wilton.db" not in caplog.text


class _RecordingStore:
    """Delegates to the real store and records every SQL statement the exporter sends."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.sql: list[str] = []
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if name in ("query", "query_one", "execute"):
                self.sql.append(args[0])
            return attr(*args, **kwargs)

        return wrapper


def test_scrape_never_reads_the_ledger(store: SqliteStore) -> None:
    fill(store, 40)
    rec = _RecordingStore(store)
    generate_latest(_registry(rec))
    assert "aggregates" in rec.calls and "get_control_state" in rec.calls
    forbidden = {"ledger_rows", "phi_window", "recent_difficulties", "count_ledger"}
    assert not forbidden & set(rec.calls)
    assert rec.sql, "the window and model status are read with SQL"
    for sql in rec.sql:
        assert not re.search(r"\bFROM\s+ledger\b(?!_)", sql, re.I), sql
        assert "ledger_rollup" not in sql or "bucket_ts >= ?" in sql or "MAX(bucket_ts)" in sql, sql


def test_exposition_names_match_the_catalogue(store: SqliteStore) -> None:
    fill(store, 40)
    text = generate_latest(_registry(store)).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert names <= exposed_names(), names - exposed_names()
    typed = {line.split()[2].removesuffix("_total") for line in text.splitlines() if line.startswith("# TYPE")}
    assert typed == {m.name for m in METRICS}
    for forbidden in ("request_id", "r12", "attempt_errors"):
        assert forbidden not in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_metrics_passes(store: SqliteStore) -> None:
    fill(store, 200)
    text = generate_latest(_registry(store))
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    # and promtool really checks: a counter without _total is flagged
    bad = b"# HELP x_requests A counter.\n# TYPE x_requests counter\nx_requests 1\n"
    bad_proc = subprocess.run(["promtool", "check", "metrics"], input=bad, capture_output=True, timeout=30)
    assert bad_proc.returncode != 0
