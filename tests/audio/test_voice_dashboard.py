"""The Voice dashboard row: its queries name real exporter metrics, and return data from a real
Prometheus scraping a real exporter over a store with audio traffic. Also the exporter's stage
p95 for stt and tts_generate, and that audio latency stays out of the chat latency histogram."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.observability.conftest import DASHBOARDS, METRIC_TOKEN, dashboard_panels, exporter_sample_names
from wilton_core.config import LatencyTargets
from wilton_core.exporter.families import ExportOptions
from wilton_core.exporter.service import ExporterService
from wilton_core.exporter.synthetic import synthetic_records
from wilton_core.store.sqlite import SqliteStore
from wilton_core.testing.procs import free_port
from wilton_core.types import LedgerRecord

DASH = DASHBOARDS / "wiltonos-voice.json"


def _dash() -> dict:  # type: ignore[type-arg]
    return json.loads(DASH.read_text(encoding="utf-8"))


def audio_records(n: int, now: float, start: int = 0) -> list[LedgerRecord]:
    """Transcriptions and speech, mostly local, some on the API and some failing."""
    out = []
    for k in range(n):
        i = start + k
        ts = now - (n - k) * 0.05
        if i % 5 == 4:
            out.append(LedgerRecord(ts=ts, request_id=f"a{i}", model_id="openai-whisper", tier="frontier",
                                    is_local=False, provider="openai", intent="stt", latency_s=1.4, audio_s=30.0,
                                    chars=400, cost_usd=0.003, fallbacks=1, tried="whisper-tiny-en",
                                    attempt_errors="whisper-tiny-en:unavailable"))
        elif i % 5 == 3:
            out.append(LedgerRecord(ts=ts, request_id=f"a{i}", model_id="espeak", tier="selfhost", is_local=True,
                                    provider="espeak_ng", intent="tts", latency_s=0.09, audio_s=2.0, chars=40))
        elif i % 10 == 1:
            out.append(LedgerRecord(ts=ts, request_id=f"a{i}", model_id="", tier="", is_local=False, provider="",
                                    intent="stt", latency_s=0.01, status="error", error_class="invalid_audio",
                                    http_status=400))
        else:
            out.append(LedgerRecord(ts=ts, request_id=f"a{i}", model_id="whisper-tiny-en", tier="selfhost",
                                    is_local=True, provider="faster_whisper", intent="stt", latency_s=0.6,
                                    audio_s=3.0, chars=40))
    return out


def test_the_voice_row_and_its_queries():
    dash = _dash()
    panels = dashboard_panels(dash)
    assert [p["title"] for p in panels if p["type"] == "row"] == ["Voice"]
    defined = exporter_sample_names()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "wilton-prometheus" and p["targets"]
        for t in p["targets"]:
            for name in METRIC_TOKEN.findall(t["expr"]):
                assert name in defined, f"panel '{p['title']}' queries unknown metric {name}"


def test_exporter_reports_voice_stage_p95_apart_from_chat(tmp_path):
    from prometheus_client import CollectorRegistry

    from wilton_core.exporter.collector import StoreCollector

    store = SqliteStore(tmp_path / "w.db")
    store.migrate()
    now = time.time()
    store.insert_ledger(synthetic_records(40, now) + audio_records(100, now))
    reg = CollectorRegistry()
    reg.register(StoreCollector(store, ExportOptions(latency_targets=LatencyTargets().as_dict())))
    stt = reg.get_sample_value("wilton_stage_latency_p95_seconds", {"stage": "stt"})
    tts = reg.get_sample_value("wilton_stage_latency_p95_seconds", {"stage": "tts_generate"})
    assert stt is not None and 1.0 <= stt <= 2.5  # 20% of stt rows took 1.4 s
    assert tts is not None and tts <= 0.25
    # the chat latency histogram (the llm stage) holds chat rows only
    assert reg.get_sample_value("wilton_request_latency_seconds_count",
                                {"tier": "selfhost", "model": "whisper-tiny-en"}) is None
    assert reg.get_sample_value("wilton_requests_total", {"tier": "selfhost", "model": "whisper-tiny-en",
                                                           "provider": "faster_whisper", "intent": "stt",
                                                           "status": "ok"}) == 50
    store.close()


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.e2e
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus binary not installed (apt-get install prometheus)")
def test_every_voice_panel_has_data_from_a_real_prometheus(tmp_path: Path):
    store = SqliteStore(tmp_path / "w.db")
    store.migrate()
    store.insert_ledger(audio_records(400, time.time()))
    stop = threading.Event()

    def traffic() -> None:
        i = 10_000
        while not stop.wait(0.25):
            store.insert_ledger(audio_records(10, time.time(), start=i))
            i += 10

    exporter = ExporterService(store, ExportOptions(latency_targets=LatencyTargets().as_dict()), port=0)
    exporter.start()
    writer = threading.Thread(target=traffic, daemon=True)
    writer.start()
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "wilton-exporter", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
    }))
    log = (tmp_path / "prometheus.log").open("w")
    prom = subprocess.Popen([str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    queries = [(p["title"], t["expr"].replace("$__rate_interval", "10s"))
               for p in dashboard_panels(_dash()) for t in p.get("targets", [])]
    missing = queries
    try:
        with httpx.Client(timeout=5) as client:
            deadline = time.monotonic() + 60
            while missing and time.monotonic() < deadline:
                time.sleep(1.0)
                try:
                    if client.get(f"{base}/-/ready").status_code != 200:
                        continue
                    missing = [(t, e) for t, e in queries if not any(
                        float(s["value"][1]) == float(s["value"][1])  # not NaN
                        for s in client.get(f"{base}/api/v1/query", params={"query": e}).json()["data"]["result"])]
                except (httpx.TransportError, KeyError, ValueError):
                    continue
        assert not missing, missing
    finally:
        stop.set()
        prom.terminate()
        prom.wait(timeout=10)
        log.close()
        writer.join(timeout=5)
        exporter.stop()
        store.close()
