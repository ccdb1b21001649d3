"""Audio rows in the shared store: their columns (migration 0006), and phi kept apart from chat's."""

from __future__ import annotations

import pytest

from wilton_core.audio.phi import audio_phi
from wilton_core.store import open_store
from wilton_core.types import LedgerRecord


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    s.migrate()
    yield s
    s.close()


def _row(i: int, intent: str | None, local: bool, **kw) -> LedgerRecord:
    return LedgerRecord(ts=1000.0 + i * 0.1, request_id=f"r{i}", model_id="m", tier="selfhost", is_local=local,
                        provider="p", intent=intent, **kw)


def test_audio_rows_leave_the_chat_phi_window_and_have_their_own(store):
    rows = [_row(0, "chat", True), _row(1, "chat", False),  # chat phi 0.5
            *[_row(2 + i, "stt", True, audio_s=30.0, chars=100) for i in range(6)],
            _row(9, "stt", False, audio_s=60.0, chars=400, cost_usd=0.006),
            _row(10, "tts", True, audio_s=2.0, chars=40), _row(11, "stt", True, status="error")]
    store.insert_ledger(rows)
    # both phi paths must leave audio out: whole buckets come from the rollup...
    w = store.phi_window(0.0, 5000.0)
    assert (w.requests, w.local_requests) == (2, 1)
    # ...a partial bucket from the ledger itself (rows 1-4: one chat API row, three local stt rows)
    edge = store.phi_window(1000.05, 1000.45)
    assert (edge.requests, edge.local_requests) == (1, 0)
    a = audio_phi(store, 0.0, 5000.0)
    assert (a["stt"].requests, a["stt"].local_requests, a["stt"].errors) == (7, 6, 1)
    assert a["stt"].phi == pytest.approx(6 / 7) and a["stt"].audio_s == 240.0 and a["stt"].chars == 1000
    assert a["stt"].cost_usd == pytest.approx(0.006)
    assert a["tts"].phi == 1.0 and a["tts"].chars == 40


def test_audio_columns_round_trip(store):
    store.insert_ledger([_row(0, "tts", True, audio_s=1.25, chars=17)])
    assert store.query("SELECT audio_s, chars FROM ledger") == [(1.25, 17)]


def test_wiltonctl_voice_phi(tmp_path, capsys):
    import json
    import time

    from wilton_core.cli.main import main

    url = f"sqlite:///{tmp_path / 'w.db'}"
    s = open_store(url)
    s.migrate()
    now = time.time()
    s.insert_ledger([LedgerRecord(ts=now - 5, request_id=f"r{i}", model_id="m", tier="selfhost", is_local=i < 3,
                                  provider="p", intent="stt", audio_s=10.0, chars=50) for i in range(4)]
                    + [LedgerRecord(ts=now - 5000, request_id="old", model_id="m", tier="selfhost", is_local=False,
                                    provider="p", intent="stt")])
    s.close()
    assert main(["voice", "phi", "--store-url", url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["intents"]["stt"]["requests"] == 4 and out["intents"]["stt"]["phi"] == 0.75
    assert main(["voice", "phi", "--store-url", url]) == 0
    assert "75.0%" in capsys.readouterr().out
