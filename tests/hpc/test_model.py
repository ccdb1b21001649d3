from __future__ import annotations

import json

import pytest

from wilton_core.hpc.model import TaskFileError, load_task_file, parse_task_file


def _problems(raw: object) -> list[str]:
    with pytest.raises(TaskFileError) as ei:
        parse_task_file(raw, "f.json")
    return ei.value.problems


def test_valid_file_builds_request_bodies():
    spec = parse_task_file({"name": "x", "concurrency": 2, "tasks": [
        {"prompt": "hi", "max_tokens": 5, "intent": "chat", "priority": 3},
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}],
         "model": "local-small", "temperature": 0.2},
    ]})
    assert spec.concurrency == 2
    assert spec.tasks[0].request_body() == {"model": "auto", "messages": [{"role": "user", "content": "hi"}],
                                            "max_tokens": 5}
    body = spec.tasks[1].request_body()
    assert body["model"] == "local-small" and body["temperature"] == 0.2 and "max_tokens" not in body
    assert body["messages"][1]["content"][1]["type"] == "image_url"


@pytest.mark.parametrize(("task", "expected"), [
    ({"prompt": "a", "max_tokens": 0}, "tasks[1].max_tokens: Input should be greater than or equal to 1"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "tasks[1].messages[0].role:"),
    ({"prompt": "a", "messages": [{"role": "user", "content": "x"}]}, "tasks[1]: give exactly one of"),
    ({}, "tasks[1]: give exactly one of 'prompt' or 'messages'"),
    ({"promt": "typo"}, "tasks[1].promt: unknown field"),
    ({"prompt": "a", "intent": "poetry"}, "tasks[1].intent: must be one of chat, code, vision, system"),
    ({"prompt": 3}, "tasks[1].prompt: Input should be a valid string"),
    ({"prompt": ""}, "tasks[1].prompt:"),
    ({"prompt": "a", "priority": "high"}, "tasks[1].priority:"),
    ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]},
     "tasks[1].messages[0]: content[0] needs a string 'type'"),
])
def test_errors_name_index_and_field(task, expected):
    problems = _problems({"name": "x", "tasks": [{"prompt": "fine"}, task]})
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_every_problem_reported_at_once():
    problems = _problems({"name": "", "concurrency": 0, "tasks": [{"prompt": "ok"}, {"prompt": 1}, {"x": 1}]})
    text = "\n".join(problems)
    for where in ("name:", "concurrency:", "tasks[1].prompt:", "tasks[2].x:"):
        assert where in text
    assert "tasks[0]" not in text


@pytest.mark.parametrize("raw", [[], "x", {"name": "x"}, {"name": "x", "tasks": []}])
def test_file_level_errors(raw):
    assert _problems(raw)


def test_load_reports_json_position(tmp_path):
    p = tmp_path / "t.json"
    p.write_text('{"name": "x",\n "tasks": [}')
    with pytest.raises(TaskFileError, match=r"not valid JSON: .* line 2 column"):
        load_task_file(p)
    with pytest.raises(TaskFileError, match="not found"):
        load_task_file(tmp_path / "missing.json")


def test_demo_file_is_valid_and_covers_intents_and_languages():
    from pathlib import Path

    raw = json.loads((Path(__file__).parents[2] / "examples" / "llm_demo.json").read_text())
    spec = parse_task_file(raw, "examples/llm_demo.json")
    assert 24 <= len(spec.tasks) <= 40
    assert {t.intent for t in spec.tasks} == {"chat", "code", "vision", "system"}
    assert all(t.max_tokens and t.max_tokens <= 96 for t in spec.tasks)
    vision = [t for t in spec.tasks if t.intent == "vision"]
    assert vision and all(any(isinstance(m.content, list) for m in (t.messages or [])) for t in vision)
