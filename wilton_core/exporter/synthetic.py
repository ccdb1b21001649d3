"""Synthetic store content for the scrape benchmark, the dashboard end-to-end test and demos.

Deterministic (no random draws): request i of a batch goes to the local model three times in
four, so the generated traffic sits exactly on the 3:1 balance, with API errors and fallbacks
mixed in so every dashboard panel has data. Two client keys (seeded by `seed_side_tables`) share
the traffic: `team-a` pays for the API requests, `private` is local-only.
"""

from __future__ import annotations

import json
from typing import Any

from wilton_core.core.control_state import ControlState
from wilton_core.types import LedgerRecord

__all__ = ["SYNTHETIC_KEYS", "seed_side_tables", "synthetic_records"]

# (id, name, budget_usd, budget_period, local_only)
SYNTHETIC_KEYS = (("key_synthetic_a", "team-a", 50.0, "month", 0), ("key_synthetic_p", "private", None, "total", 1))


def synthetic_records(n: int, now: float, *, start: int = 0, spacing_s: float = 0.1) -> list[LedgerRecord]:
    """n requests ending at `now`, `spacing_s` apart: 3 local : 1 API, API errors and fallbacks.

    The API errors are streams that broke mid-way (served, then failed), so phi stays exactly 3:1.
    """
    out = []
    for k in range(n):
        i = start + k
        ts = now - (n - k) * spacing_s
        rid = f"synthetic-{i}"
        if i % 4 != 3:
            private = i % 2 == 0
            out.append(LedgerRecord(ts=ts, request_id=rid, model_id="local-small", tier="selfhost",
                                    is_local=True, provider="openai", intent="chat", latency_s=0.3,
                                    ttft_s=0.05, tokens_in=20, tokens_out=40, stream=True,
                                    key_id="key_synthetic_p" if private else "", local_only=private))
        elif i % 8 == 3:
            out.append(LedgerRecord(ts=ts, request_id=rid, model_id="gpt-4o", tier="frontier",
                                    is_local=False, provider="openai", intent="code", latency_s=3.0,
                                    tokens_in=100, tokens_out=200, cost_usd=0.00225, fallbacks=1,
                                    tried="groq-llama-8b", attempt_errors="groq-llama-8b:rate_limited",
                                    key_id="key_synthetic_a"))
        else:
            out.append(LedgerRecord(ts=ts, request_id=rid, model_id="groq-llama-8b", tier="edge",
                                    is_local=False, provider="openai", intent="chat", latency_s=1.2,
                                    stream=True, status="stream_error", error_class="unavailable"))
    return out


def seed_side_tables(store: Any, now: float) -> None:
    """Control state, one router replica's health, the insight run, a model test result, two keys."""
    store.put_control_state(ControlState(phi_target=0.75, threshold=0.6, bias=0.01, measured_phi=0.74,
                                         error=0.01, updated_at=now - 2, steps=17))
    store.kv_set("router_health:r1", json.dumps({"ts": now - 1, "replica": "r1", "models": {
        "local-small": {"healthy": True, "configured": True, "cooldown_until": 0, "consecutive_failures": 0},
        "groq-llama-8b": {"healthy": False, "configured": True, "cooldown_until": now + 8,
                          "consecutive_failures": 4}}}))
    store.kv_set("insight:last_run", json.dumps({"ts": now - 600, "ok": True, "runs_ok": 3, "runs_failed": 1,
                                                 "last_success_ts": now - 600}))
    store.execute(
        "INSERT INTO model_status (model_id, status, latency_ms, tested_at, error, failures)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET status = excluded.status,"
        " latency_ms = excluded.latency_ms, tested_at = excluded.tested_at",
        ("local-small", "available", 120.0, now - 60, None, 0),
    )
    for kid, name, budget, period, local_only in SYNTHETIC_KEYS:
        store.execute(
            "INSERT INTO api_keys (id, name, key_hash, prefix, created_at, updated_at, budget_usd, budget_period,"
            " local_only) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (kid, name, f"synthetic-{kid}", "sk-wilton-synth", now - 86400, now - 86400, budget, period,
             local_only),
        )
