"""The learning simulation's fake judge (testing/routing_workload.judge_reply) reads the judge
prompt the router really builds (core/judge.py over core/messages.transcript) and answers with a
verdict the router's strict parser accepts: the labels it yields are the workload's truth, in
either A/B order."""

from __future__ import annotations

from wilton_core.core.judge import judge_messages, parse_verdict
from wilton_core.core.messages import transcript
from wilton_core.testing.routing_workload import answer_text, judge_reply, tasks


def _judge_prompt(prompt: str, first: str, second: str) -> str:
    msgs = judge_messages(transcript([{"role": "user", "content": prompt}], limit=1 << 20), first, second)
    assert msgs[-1]["role"] == "user"
    return msgs[-1]["content"]


def test_verdict_follows_the_truth_in_both_orders() -> None:
    all_tasks = tasks()
    by_prompt = {t.prompt: t for t in all_tasks}
    # a task the local model gets wrong and the API right, and one both get right
    split = next(t for t in all_tasks if not t.weak_right and t.strong_right)
    both = next(t for t in all_tasks if t.weak_right and t.strong_right)
    for task in (split, both):
        local, api = answer_text(task, local=True), answer_text(task, local=False)
        v = parse_verdict(judge_reply(by_prompt, _judge_prompt(task.prompt, local, api)))
        assert v is not None and (v.a, v.b) == (task.weak, task.strong)
        v = parse_verdict(judge_reply(by_prompt, _judge_prompt(task.prompt, api, local)))
        assert v is not None and (v.a, v.b) == (task.strong, task.weak)


def test_an_unknown_task_or_an_unreadable_prompt_is_no_verdict() -> None:
    by_prompt = {t.prompt: t for t in tasks()[:10]}
    assert parse_verdict(judge_reply(by_prompt, _judge_prompt("what is 2 + 2?", "4", "5"))) is None
    assert parse_verdict(judge_reply(by_prompt, "score these please")) is None
