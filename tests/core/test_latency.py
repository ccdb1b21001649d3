import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wilton_core.config import LatencyTargets
from wilton_core.core.latency import LatencyTracker, Series, percentile


def test_stats_have_the_seed_shape_and_targets():
    t = LatencyTracker(LatencyTargets())
    for v in (1.0, 2.0, 3.0, 4.0):
        t.record("llm", v)
    stats = t.get_stats()
    assert stats["llm"] == {
        "avg": 2.5, "max": 4.0, "p50": 2.5, "p95": pytest.approx(3.85), "target": 2.0, "count": 4,
    }
    # stages with a target and no data are listed, empty
    assert stats["stt"]["count"] == 0 and stats["stt"]["avg"] is None and stats["stt"]["target"] == 0.8


def test_any_stage_name_is_accepted_without_target():
    t = LatencyTracker({"llm": 1.0})
    t.record("embedding", 0.2)
    assert t.get_stats()["embedding"]["target"] is None
    assert t.breaches() == []


def test_window_evicts_oldest():
    t = LatencyTracker(window=3)
    for v in (10.0, 1.0, 2.0, 3.0):
        t.record("llm", v)
    s = t.get_stats()["llm"]
    assert s["count"] == 3 and s["max"] == 3.0 and s["avg"] == 2.0


def test_invalid_durations_are_refused():
    t = LatencyTracker()
    assert t.record("llm", -1.0) is False
    assert t.record("llm", math.nan) is False
    assert t.record_model("m", math.inf) is False
    assert t.get_stats()["llm"]["count"] == 0


def test_per_model_percentiles_and_ttft():
    t = LatencyTracker()
    for i in range(1, 101):
        t.record_model("groq", i / 100, ttft_s=i / 1000)
    t.record_model("ollama", 5.0)
    t.record("llm", 7.0, model="ollama")
    t.record("stt", 9.0, model="ollama")  # not an llm stage: model series untouched
    by = t.stats_by_model()
    assert set(by) == {"groq", "ollama"}
    g = by["groq"]
    assert g.count == 100
    assert g.latency_p50_s == pytest.approx(np.percentile(np.arange(1, 101) / 100, 50))
    assert g.latency_p95_s == pytest.approx(np.percentile(np.arange(1, 101) / 100, 95))
    assert g.ttft_p50_s == pytest.approx(0.0505)
    o = t.model_latency("ollama")
    assert o is not None and o.count == 2 and o.ttft_p50_s is None and o.latency_max_s == 7.0
    assert t.model_latency("nope") is None
    assert t.get_stats()["llm"]["count"] == 102


def test_breaches_are_sorted_worst_first():
    t = LatencyTracker(LatencyTargets(stt=0.8, llm=2.0))
    t.record("llm", 3.0)       # 1.5x
    t.record("stt", 2.4)       # 3x
    t.record("tts_playback", 0.1)
    b = t.breaches("avg")
    assert [x.stage for x in b] == ["stt", "llm"]
    assert b[0].ratio == pytest.approx(3.0) and b[0].target == 0.8
    assert t.breaches("max")[0].stage == "stt"


def test_percentile_edges():
    assert percentile([5.0], 95) == 5.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        Series(0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=300),
       st.integers(min_value=1, max_value=50))
def test_series_matches_numpy_over_the_window(values, window):
    s = Series(window)
    for v in values:
        s.add(v)
    tail = values[-window:]
    assert s.values() == tail
    assert len(s) == len(tail) and s.total == len(values)
    assert s.max() == max(tail)
    assert s.avg() == pytest.approx(sum(tail) / len(tail), rel=1e-9, abs=1e-6)
    for q in (50, 95):
        assert s.quantile(q) == pytest.approx(float(np.percentile(tail, q)), rel=1e-9, abs=1e-9)


def test_concurrent_records_are_all_counted():
    t = LatencyTracker(window=100_000)

    def worker():
        for _ in range(2000):
            t.record_model("m", 0.5)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.model_latency("m").count == 8000


def test_record_and_read_are_cheap():
    import time

    t = LatencyTracker(window=1000)
    for i in range(1000):
        t.record_model("m", (i * 7919 % 1000) / 100)
    n = 20_000
    start = time.perf_counter()
    for i in range(n):
        t.record_model("m", (i % 997) / 100)
        t.model_latency("m")
    per_op = (time.perf_counter() - start) / n
    assert per_op < 100e-6, f"record+read took {per_op * 1e6:.1f} µs"
