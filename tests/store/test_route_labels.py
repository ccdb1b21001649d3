"""route_labels: the one writer/reader, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest

from wilton_core.store.route_labels import RouteLabel, add_labels, count_labels, read_labels


def test_labels_upsert_read_and_count(store):
    add_labels(store, [
        RouteLabel("r1", "feedback", 1.0, model="local/smollm2", weak_score=0.0, prompt="hi"),
        RouteLabel("r2", "shadow", 2.0, model="openai/gpt", weak_score=1.0, strong_score=1.0,
                   detail={"judge": "local"}),
    ])
    # the same request's feedback again replaces the first
    add_labels(store, [RouteLabel("r1", "feedback", 3.0, model="local/smollm2", weak_score=1.0, prompt="hi")])
    got = read_labels(store)
    assert [(lb.request_id, lb.source, lb.weak_score) for lb in got] == [("r2", "shadow", 1.0), ("r1", "feedback", 1.0)]
    assert got[0].detail == {"judge": "local"}
    assert [lb.request_id for lb in read_labels(store, with_prompt=True)] == ["r1"]
    counts = {c.source: c for c in count_labels(store)}
    assert counts["feedback"].total == 1 and counts["feedback"].with_prompt == 1
    assert counts["shadow"].both_tiers == 1


@pytest.mark.parametrize("kwargs", [
    {"source": "oops"}, {"weak_score": 1.5}, {"weak_score": float("nan")}, {"weak_score": None},
])
def test_bad_labels_are_refused(kwargs):
    base = {"request_id": "r", "source": "feedback", "ts": 0.0, "weak_score": 0.5}
    with pytest.raises(ValueError):
        RouteLabel(**{**base, **kwargs})
