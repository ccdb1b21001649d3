from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from wilton_core.store.base import ControlState
from wilton_core.store.sqlite import SqliteStore
from wilton_core.types import LedgerRecord

NOW = 1_700_000_000.0


def ledger_batch(n: int, now: float = NOW, start: int = 0) -> list[LedgerRecord]:
    """n requests over the last n/10 seconds: 3 local : 1 API, some API failures and fallbacks."""
    out = []
    for i in range(start, start + n):
        ts = now - (n - (i - start)) * 0.1
        if i % 4 != 3:
            out.append(LedgerRecord(ts=ts, request_id=f"r{i}", model_id="local-small", tier="selfhost",
                                    is_local=True, provider="openai", intent="chat", latency_s=0.3,
                                    ttft_s=0.05, tokens_in=20, tokens_out=40, stream=True))
        elif i % 8 == 3:
            out.append(LedgerRecord(ts=ts, request_id=f"r{i}", model_id="gpt-4o", tier="frontier",
                                    is_local=False, provider="openai", intent="code", latency_s=3.0,
                                    tokens_in=100, tokens_out=200, cost_usd=0.00225, fallbacks=1,
                                    tried="groq-llama-8b", attempt_errors="groq-llama-8b:rate_limited"))
        else:
            out.append(LedgerRecord(ts=ts, request_id=f"r{i}", model_id="groq-llama-8b", tier="edge",
                                    is_local=False, provider="openai", intent="chat", latency_s=1.2,
                                    status="error", error_class="unavailable"))
    return out


def fill(store: SqliteStore, n: int = 400, now: float = NOW) -> None:
    store.insert_ledger(ledger_batch(n, now))
    store.put_control_state(ControlState(phi_target=0.75, threshold=0.6, bias=0.01, measured_phi=0.74,
                                         error=0.01, updated_at=now - 2, steps=17))
    store.kv_set("router_health:r1", json.dumps({"ts": now - 1, "models": {
        "local-small": {"healthy": True, "cooldown_until": 0, "consecutive_failures": 0},
        "groq-llama-8b": {"healthy": False, "cooldown_until": now + 8, "consecutive_failures": 4}}}))
    store.kv_set("insight:last_run", json.dumps({"ts": now - 600, "ok": True, "runs_ok": 3, "runs_failed": 1}))
    store.execute("INSERT INTO model_status (model_id, status, latency_ms, tested_at, error, failures)"
                  " VALUES (?, ?, ?, ?, ?, ?)", ("local-small", "available", 120.0, now - 60, None, 0))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "wilton.db")
    s.migrate()
    yield s
    s.close()
