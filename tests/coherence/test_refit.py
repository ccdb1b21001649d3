"""The periodic refit (coherence/refit.py): publishes only a model that beats the active one on
held-back labels, records both figures either way; the daemon's job and `wiltonctl route
labels|refit` run the same function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from coh_helpers import PASSWORD, FakeClock, cheap_hasher

from wilton_core.cli.main import main as wiltonctl
from wilton_core.coherence.refit import LAST_REFIT_KEY, refit
from wilton_core.coherence.service import CoherenceOptions, CoherenceService
from wilton_core.core.difficulty_eval import is_heldout
from wilton_core.core.label_rows import PartialLabel, to_labelled
from wilton_core.store.difficulty_models import DifficultyVersions
from wilton_core.store.route_labels import RouteLabel, add_labels
from wilton_core.store.sqlite import SqliteStore
from wilton_core.testing.routing_workload import Task, tasks, unit_hash

MIN = 100


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "wilton.db")
    s.migrate()
    yield s
    s.close()


def _feedback_labels(chosen: list[Task], flip_heldback: bool = False) -> list[RouteLabel]:
    """What feedback leaves: the served tier's score only (3 of 4 answered locally). With
    `flip_heldback`, the rows `learn` holds back say the opposite of what it fits on."""
    out = []
    for i, t in enumerate(chosen):
        local = unit_hash("served|" + t.prompt) < 0.75
        weak, strong = t.weak, t.strong
        if flip_heldback and is_heldout(t.prompt, 0.2):
            weak = 1.0 - weak
        out.append(RouteLabel(request_id=f"r{i}", source="feedback", ts=1000.0 + i, model="m",
                              weak_score=weak if local else None, strong_score=None if local else strong,
                              prompt=t.prompt))
    return out


def _sample(n: int) -> list[Task]:
    return sorted(tasks(), key=lambda t: unit_hash("pick|" + t.prompt))[:n]


def test_learnable_labels_are_published_with_both_figures(store: SqliteStore) -> None:
    add_labels(store, _feedback_labels(_sample(600)))
    add_labels(store, [RouteLabel("no-prompt", "feedback", 5000.0, "m", weak_score=0.0)])  # counted, not learnt
    out = refit(store, now=10_000.0, min_labels=MIN)
    assert out.published and out.reason == "published" and out.labels == 600
    assert out.heldback_pgr_25_after is not None and out.heldback_pgr_25_before is not None
    assert out.heldback_pgr_25_after > out.heldback_pgr_25_before
    versions = DifficultyVersions(store)
    assert versions.active_version() == out.version
    summary = versions.get(out.version or 0).summary
    assert summary["heldback_pgr_25_before"] == out.heldback_pgr_25_before
    assert summary["heldback_pgr_25_after"] == out.heldback_pgr_25_after and summary["source"] == "refit"
    assert json.loads(store.kv_get(LAST_REFIT_KEY) or "{}")["version"] == out.version


def test_a_model_worse_on_the_held_back_labels_is_never_published(store: SqliteStore) -> None:
    add_labels(store, _feedback_labels(_sample(600), flip_heldback=True))
    out = refit(store, now=10_000.0, min_labels=MIN)
    assert not out.published and out.reason == "not_better" and out.version is None
    assert out.heldback_pgr_25_after is not None and out.heldback_pgr_25_before is not None
    assert out.heldback_pgr_25_after <= out.heldback_pgr_25_before
    assert DifficultyVersions(store).list() == []  # nothing stored, the shipped scorer stays active
    recorded = json.loads(store.kv_get(LAST_REFIT_KEY) or "{}")
    assert recorded["reason"] == "not_better"
    assert recorded["heldback_pgr_25_before"] == out.heldback_pgr_25_before


def test_too_few_learnable_labels_fit_nothing(store: SqliteStore) -> None:
    labels = _feedback_labels(_sample(150))
    add_labels(store, labels[:50] + [RouteLabel(lb.request_id, "feedback", lb.ts, weak_score=lb.weak_score,
                                                strong_score=lb.strong_score) for lb in labels[50:]])
    out = refit(store, now=1.0, min_labels=MIN)
    assert (out.published, out.reason, out.labels) == (False, "too_few_labels", 50)


def test_rows_are_capped_to_the_newest(store: SqliteStore) -> None:
    add_labels(store, _feedback_labels(_sample(300)))
    out = refit(store, now=1.0, min_labels=20, max_rows=120)
    assert out.labels == 120


def test_fills() -> None:
    labels = [PartialLabel("a b c", 1.0, None), PartialLabel("d e f", None, 0.0), PartialLabel("g", 0.5, 1.0)]
    assert [(r.strong, r.weak) for r in to_labelled(labels, "both")] == [(1.0, 0.5)]
    assert [(r.strong, r.weak) for r in to_labelled(labels, "mean")] == [(0.5, 1.0), (0.0, 0.75), (1.0, 0.5)]
    rows = to_labelled(labels, "anchor", lambda ps: __import__("numpy").array([[0.9, 0.2]] * len(ps)))
    assert [(r.strong, r.weak) for r in rows] == [(0.9, 1.0), (0.0, 0.2), (1.0, 0.5)]
    with pytest.raises(ValueError):
        to_labelled(labels, "guess")


def test_the_daemon_schedules_and_runs_the_refit(store: SqliteStore, tmp_path: Path) -> None:
    svc = CoherenceService(CoherenceOptions(password=PASSWORD, data_dir=tmp_path / "data", refit_interval_s=3600,
                                            refit_min_labels=MIN),
                           store=store, clock=FakeClock(), hasher=cheap_hasher(), announce=lambda s: None)
    svc.start()
    try:
        job = svc._scheduler.get_job("route-refit")
        assert job is not None and job.trigger.interval.total_seconds() == 3600
        assert svc._scheduler.get_job("phi-step") is not None  # a separate job: steps never wait for a refit
        add_labels(store, _feedback_labels(_sample(600)))
        out = svc.refit()
        assert out.published and svc.last_refit == out
        assert DifficultyVersions(store).active_version() == out.version
    finally:
        svc.stop()
    with pytest.raises(ValueError):
        CoherenceOptions(refit_interval_s=0)


def test_wiltonctl_route_labels_and_refit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert wiltonctl(["route", "labels", "--store-url", url]) == 2  # no store: a readable error, none created
    assert "no store yet" in capsys.readouterr().err and not (tmp_path / "w.db").exists()
    s = SqliteStore(tmp_path / "w.db")
    s.migrate()
    labels = _feedback_labels(_sample(600))
    add_labels(s, [*labels, RouteLabel("x", "shadow", 1.0, weak_score=1.0, strong_score=1.0)])
    s.close()
    assert wiltonctl(["route", "labels", "--store-url", url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by = {c["source"]: c for c in data["sources"]}
    assert by["feedback"] == {"source": "feedback", "total": 600, "with_prompt": 600, "both_tiers": 0}
    assert by["shadow"]["both_tiers"] == 1 and data["last_refit"] is None
    assert wiltonctl(["route", "refit", "--store-url", url, "--min-labels", "5000"]) == 1
    assert "not fitted" in capsys.readouterr().out
    assert wiltonctl(["route", "refit", "--store-url", url, "--min-labels", "100"]) == 0
    out = capsys.readouterr().out
    assert "published and active" in out and "(active) ->" in out and "(candidate)" in out
    assert wiltonctl(["route", "labels", "--store-url", url]) == 0
    text = capsys.readouterr().out
    assert "feedback" in text and "last refit: version 1 published" in text
    assert wiltonctl(["route", "model", "list", "--store-url", url]) == 0
    assert "* 1" in capsys.readouterr().out
