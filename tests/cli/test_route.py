import json

from wilton_core.cli.main import main as wiltonctl
from wilton_core.core.classify import classify_request
from wilton_core.core.difficulty import load_default_scorer


def test_route_score_adds_difficulty_and_intent_exactly_as_the_router(tmp_path, capsys):
    lines = [
        {"id": "a", "prompt": "olá, tudo bem?"},
        {"id": "b", "messages": [{"role": "user", "content": "Write a Python function that merges two sorted lists"}]},
        {"id": "c", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
    ]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert wiltonctl(["route", "score", str(f)]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c"]
    assert [o["intent"] for o in out] == ["chat", "code", "vision"]
    scorer = load_default_scorer()
    for src, o in zip(lines, out, strict=True):
        intent, difficulty = classify_request(src.get("messages") or src["prompt"], scorer)
        assert o["difficulty"] == round(difficulty, 6) and 0.0 <= o["difficulty"] <= 1.0
        assert o["intent"] == intent.value


def test_route_score_rejects_bad_lines_before_writing_anything(tmp_path, capsys):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"prompt": "fine"}\n{"text": "no prompt"}\n')
    assert wiltonctl(["route", "score", str(f)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "bad.jsonl:2" in cap.err and "Traceback" not in cap.err
    g = tmp_path / "notjson.jsonl"
    g.write_text("{oops\n")
    assert wiltonctl(["route", "score", str(g)]) == 2
    assert "notjson.jsonl:1: not valid JSON" in capsys.readouterr().err
    assert wiltonctl(["route", "score", str(tmp_path / "missing.jsonl")]) == 2


def test_route_explain(capsys):
    assert wiltonctl(["route", "explain", "Prove that the square root of 2 is irrational", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert 0.0 <= info["score"] <= 1.0 and info["intent"] == "chat" and info["features"]
    assert wiltonctl(["route", "explain", "hello"]) == 0
    assert "difficulty" in capsys.readouterr().out
