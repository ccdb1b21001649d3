"""Learning from a deployment's labels: the label reader, learn(), stored versions, the router's
refresh and the `wiltonctl route learn|model` commands."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from wilton_core.cli.main import main as wiltonctl
from wilton_core.core.difficulty import DifficultyScorer, load_default_scorer
from wilton_core.core.difficulty_train import LabelError, LabelledRow, learn, read_labelled
from wilton_core.core.difficulty_versions import ActiveScorer, VersionError
from wilton_core.store import open_store
from wilton_core.store.difficulty_models import DifficultyVersions

TOPICS = {
    "hard": ["enzyme kinetics", "tort liability", "orbital mechanics", "bond yields", "protein folding"],
    "easy": ["breakfast recipes", "city parks", "pop songs", "holiday plans", "garden flowers"],
}


def _rows(n: int) -> list[LabelledRow]:
    """A hidden rule: the local model fails on some topics, never on others; the API never fails."""
    rows = []
    for i in range(n):
        kind = "hard" if i % 2 else "easy"
        topic = TOPICS[kind][(i // 2) % 5]
        h = int(hashlib.sha256(str(i).encode()).hexdigest()[:6], 16)
        prompt = f"Question {h}: tell me something useful about {topic}, in a few sentences please."
        rows.append(LabelledRow(prompt, 1.0, 0.0 if kind == "hard" else 1.0))
    return rows


@pytest.fixture(scope="module")
def learned() -> tuple[DifficultyScorer, object]:
    anchor = load_default_scorer()
    return anchor, learn(anchor, _rows(300))


def test_read_labelled_accepts_the_dev_format_and_names_bad_lines() -> None:
    ok = ['{"id": "x", "prompt": "p", "strong_score": 1.0, "weak_score": 0, "extra": [1]}', "", "  "]
    assert read_labelled(ok) == [LabelledRow("p", 1.0, 0.0)]
    bad = {
        '{"prompt": "", "strong_score": 1, "weak_score": 1}': "'prompt'",
        '{"prompt": "p", "strong_score": 1.5, "weak_score": 1}': "'strong_score'",
        '{"prompt": "p", "strong_score": true, "weak_score": 1}': "'strong_score'",
        '{"prompt": "p", "strong_score": 1}': "'weak_score'",
        "[1, 2]": "not a JSON object",
        "{oops": "not a JSON object",
    }
    for line, message in bad.items():
        with pytest.raises(LabelError, match=message) as e:
            read_labelled(['{"prompt": "fine", "strong_score": 1, "weak_score": 0}', line], where="f.jsonl")
        assert "f.jsonl:2" in str(e.value)


def test_learn_picks_up_a_hidden_rule_and_stays_anchored(learned: tuple[DifficultyScorer, object]) -> None:
    anchor, res = learned
    assert res.heldback_rows > 30 and res.train_rows + res.heldback_rows == 300
    assert res.after_pgr_25 is not None and res.before_pgr_25 is not None
    assert res.after_pgr_25 > res.before_pgr_25 + 0.2 and res.improved
    new = res.scorer
    hard = "Tell me something useful about orbital mechanics, in a few sentences please."
    easy = "Tell me something useful about garden flowers, in a few sentences please."
    assert new.score(hard) > new.score(easy)
    # Same vocabulary and vectors as the anchor; the learned prompts got OOD centroids of their own.
    assert new.vocab is not anchor.vocab and dict(new.vocab) == dict(anchor.vocab)
    assert len(new.ood_centroids) > len(anchor.ood_centroids)
    assert new.ood_lo <= anchor.ood_lo and new.ood_hi <= anchor.ood_hi  # never stricter
    with pytest.raises(LabelError, match="at least 20"):
        learn(anchor, _rows(5))


def test_versions_in_the_store_and_the_router_refresh(tmp_path: Path, learned: tuple[DifficultyScorer, object]) -> None:
    anchor, res = learned
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    versions = DifficultyVersions(store)
    loads: list[int] = []

    def load(v: int) -> DifficultyScorer:
        loads.append(v)
        return versions.load(v)

    active = ActiveScorer(versions, anchor, load=load)
    assert active.refresh(anchor) is anchor and loads == []  # nothing stored: the shipped scorer
    assert versions.active_scorer() == (None, anchor)
    v1 = versions.add(res.scorer, {"rows": 300}, None, 1.0, activate=True)  # type: ignore[attr-defined]
    v2 = versions.add(res.scorer, {"rows": 300}, v1, 2.0, activate=False)  # type: ignore[attr-defined]
    assert (v1, v2) == (1, 2) and versions.active_version() == 1
    current = active.refresh(anchor)
    assert loads == [1] and current is not anchor
    text = "Tell me something useful about tort liability, in a few sentences please."
    assert current.score(text) == pytest.approx(res.scorer.score(text), abs=1e-6)  # type: ignore[attr-defined]
    assert active.refresh(current) is current and loads == [1]  # unchanged: no reload
    versions.activate(2)
    assert [v.active for v in versions.list()] == [False, True]
    assert active.refresh(current) is not current and loads == [1, 2]
    assert versions.rollback() == 1 and versions.rollback() is None
    assert active.refresh(current) is anchor  # back to the shipped scorer
    with pytest.raises(VersionError, match="nothing to roll back"):
        versions.rollback()
    with pytest.raises(VersionError, match="no difficulty model version 9"):
        versions.activate(9)
    store.close()


def test_cli_route_learn_and_model_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    f = tmp_path / "labels.jsonl"
    f.write_text("\n".join(json.dumps({"prompt": r.prompt, "strong_score": r.strong, "weak_score": r.weak,
                                       "id": i}) for i, r in enumerate(_rows(200))) + "\n")
    assert wiltonctl(["route", "learn", str(f), "--store-url", url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["active"] is True and out["improved"] is True
    assert out["rows"] == 200 and out["parent"] is None
    assert wiltonctl(["route", "model", "list", "--store-url", url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["active"]) for v in listed] == [(1, True)]
    assert wiltonctl(["route", "model", "show", "1", "--store-url", url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model"]["learned_from"] == "labels.jsonl" and shown["summary"]["rows"] == 200
    probe = tmp_path / "probe.jsonl"
    probe.write_text(json.dumps({"prompt": "Tell me something useful about enzyme kinetics, in a few sentences."}))

    def scored(*extra: str) -> float:
        assert wiltonctl(["route", "score", str(probe), *extra]) == 0
        return float(json.loads(capsys.readouterr().out)["difficulty"])

    shipped = scored()
    assert scored("--store-url", url) > shipped  # the learned version: this topic is hard here
    assert wiltonctl(["route", "model", "rollback", "--store-url", url]) == 0
    assert "active: shipped" in capsys.readouterr().out
    assert scored("--store-url", url) == shipped
    assert wiltonctl(["route", "model", "rollback", "--store-url", url]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert wiltonctl(["route", "model", "show", "7", "--store-url", url]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "strong_score": 2, "weak_score": 0}\n')
    assert wiltonctl(["route", "learn", str(bad), "--store-url", url]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1" in err and "Traceback" not in err


async def test_router_picks_up_a_new_active_version_without_restart(
        tmp_path: Path, learned: tuple[DifficultyScorer, object]) -> None:
    from wilton_core.config import parse_config
    from wilton_core.router.service import RouterService

    anchor, res = learned
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    config = parse_config({"models": [{"id": "m1", "provider": "openai", "model": "m1",
                                       "base_url": "http://127.0.0.1:9/v1", "tier": "selfhost",
                                       "is_local": True, "capability": "standard"}],
                           "routing": {"probe_models": False}})
    svc = RouterService(config, store=store, environ={})
    await svc.start()
    try:
        assert svc.state.scorer is anchor  # nothing learned yet: the shipped scorer
        versions = DifficultyVersions(store)
        versions.add(res.scorer, {"rows": 300}, None, 1.0, activate=True)  # type: ignore[attr-defined]
        await svc.refresh_control()  # what the router's once-a-second loop runs
        text = "Tell me something useful about tort liability, in a few sentences please."
        assert svc.state.scorer is not anchor
        assert svc.state.scorer.score(text) == pytest.approx(res.scorer.score(text), abs=1e-6)  # type: ignore[attr-defined]
        versions.rollback()
        await svc.refresh_control()
        assert svc.state.scorer is anchor
    finally:
        await svc.stop()
        store.close()


def test_an_unloadable_version_is_tried_once_and_routing_keeps_its_scorer(tmp_path: Path) -> None:
    anchor = load_default_scorer()
    store = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    store.execute("INSERT INTO difficulty_models (version, created_at, parent, active, summary, artefact)"
                  " VALUES (1, 0, NULL, 1, '{}', 'bm90IGFuIG5weg==')")  # base64 of "not an npz"
    versions = DifficultyVersions(store)
    calls: list[int] = []

    def load(v: int) -> DifficultyScorer:
        calls.append(v)
        return versions.load(v)

    active = ActiveScorer(versions, anchor, load=load)
    with pytest.raises(Exception):  # noqa: B017 - whatever numpy raises; the router logs it
        active.refresh(anchor)
    assert active.refresh(anchor) is anchor and calls == [1]  # not retried every second
    store.close()


def test_an_unreadable_stored_artefact_is_a_version_error() -> None:
    import base64

    from wilton_core.core.difficulty_versions import decode_scorer, encode_scorer

    with pytest.raises(VersionError, match="base64"):
        decode_scorer("not base64 !")
    with pytest.raises(VersionError, match="cannot be read"):
        decode_scorer(base64.b64encode(b"PK\x03\x04 not a zip").decode())
    again = decode_scorer(encode_scorer(load_default_scorer()))
    assert again.score("What is 2 + 2?") == pytest.approx(load_default_scorer().score("What is 2 + 2?"), abs=1e-9)
