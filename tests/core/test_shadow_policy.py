"""Shadow judging's pure decisions: sampling, which requests, which models, the hourly spend cap,
the judge's prompt and the strict reading of its verdict."""

from __future__ import annotations

import pytest

from wilton_core.config import ConfigError, parse_config
from wilton_core.core import shadow as policy
from wilton_core.core.judge import MAX_ANSWER_CHARS, judge_messages, parse_verdict


def _m(mid: str, local: bool, tier: str = "edge", cap: str = "standard", price: float = 0.0,
       usable: bool = True) -> policy.ShadowModel:
    return policy.ShadowModel(mid, local, "selfhost" if local else tier, cap, price, price * 4, usable)


def test_draw() -> None:
    assert policy.draw(0.01, 0.0099) and not policy.draw(0.01, 0.01)
    assert not policy.draw(0.0, 0.0)  # share 0 samples nothing, whatever the draw


def _body(**kw: object) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **kw}


@pytest.mark.parametrize(("body", "reason"), [
    (_body(), None),
    (_body(response_format={"type": "text"}), None),
    (_body(tool_choice="none"), None),
    (_body(tools=[{"type": "function", "function": {"name": "f"}}]), "tools"),
    (_body(tool_choice="auto"), "tools"),
    (_body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}), "response_format"),
    (_body(response_format={"type": "json_object"}), "response_format"),
    (_body(n=2), "n"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "1"}]},
                   {"role": "tool", "content": "4", "tool_call_id": "1"}]}, "tools"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://i"}}]}]},
     "images"),
    (_body(modalities=["text", "audio"]), "audio"),
])
def test_unsupported_reason(body: dict[str, object], reason: str | None) -> None:
    assert policy.unsupported_reason(body) == reason


def test_the_other_tier_is_the_strongest_usable_model_of_it() -> None:
    models = [_m("loc-small", True, cap="basic"), _m("loc-big", True, cap="advanced"),
              _m("edge", False, "edge", price=0.1), _m("front", False, "frontier", "advanced", price=3.0),
              _m("front-down", False, "frontier", "advanced", price=9.0, usable=False)]
    assert policy.pick_other(models, served_local=True).id == "front"
    assert policy.pick_other(models, served_local=False).id == "loc-big"
    # the judge answers only when it is the tier's only model
    assert policy.pick_other(models, served_local=True, exclude="front").id == "edge"
    assert policy.pick_other([_m("j", False)], served_local=True, exclude="j").id == "j"
    assert policy.pick_other([_m("a", True)], served_local=True) is None


def test_the_judge_is_the_configured_one_or_the_strongest_api_model() -> None:
    models = [_m("loc", True, cap="advanced"), _m("edge", False, "edge", price=0.1),
              _m("front", False, "frontier", "advanced", price=3.0), _m("down", False, usable=False)]
    assert policy.pick_judge(models, None).id == "front"
    assert policy.pick_judge(models, "loc").id == "loc"  # a local judge, when the operator says so
    assert policy.pick_judge(models, "down") is None  # not replaced behind the operator's back
    assert policy.pick_judge([_m("loc", True)], None) is None


def test_shadow_max_tokens_follows_the_client_within_the_cap() -> None:
    assert policy.shadow_max_tokens({"max_tokens": 50}) == 50
    assert policy.shadow_max_tokens({"max_completion_tokens": 10_000}) == policy.SHADOW_MAX_TOKENS
    assert policy.shadow_max_tokens({}) == policy.SHADOW_MAX_TOKENS
    assert policy.shadow_max_tokens({"max_tokens": True}) == policy.SHADOW_MAX_TOKENS


def test_the_estimate_covers_the_answer_and_the_judge() -> None:
    answerer, judge = _m("a", False, price=1.0), _m("j", False, price=2.0)
    est = policy.estimate_usd([{"role": "user", "content": "x" * 400}], 100, answerer, judge, answer_tokens=50)
    # 108 prompt tokens; answer: 108 in (1 $/M) + 100 out (4 $/M); judge: 108+50+100+200 in (2 $/M) + 200 out (8 $/M)
    assert est == pytest.approx((108 * 1 + 100 * 4 + 458 * 2 + 200 * 8) / 1e6)
    assert policy.estimate_usd([], 100, _m("l", True), _m("lj", True), 0) == 0.0  # local models are free


def test_spend_window_holds_the_cap_and_rolls() -> None:
    w = policy.SpendWindow(1.0, window_s=3600)
    assert not w.exhausted(0.0)
    assert w.admit(0.0, 0.6) and not w.admit(0.0, 0.6)  # the reservation counts
    assert w.admit(0.0, 0.4) and w.exhausted(0.0)
    w.settle(10.0, 0.6, 0.1)  # cheaper than estimated: the difference is free again
    w.settle(10.0, 0.4, 0.2)
    assert w.spent(10.0) == pytest.approx(0.3) and w.reserved_usd == 0.0
    assert w.admit(20.0, 0.7) and not w.admit(20.0, 0.01)
    w.settle(30.0, 0.7, 0.0)  # a failed comparison costs what it spent (nothing here)
    assert w.spent(3609.0) == pytest.approx(0.3)
    assert w.spent(3610.0) == 0.0  # an hour after it was spent, it no longer counts
    zero = policy.SpendWindow(0.0)
    assert zero.exhausted(0.0) and not zero.admit(0.0, 1e-9)


def test_judge_messages_show_both_answers_bounded() -> None:
    msgs = judge_messages("user: hi", "first answer", "x" * (MAX_ANSWER_CHARS * 3))
    assert msgs[0]["role"] == "system" and '"A"' in msgs[0]["content"]
    user = msgs[1]["content"]
    assert "<answer_A>\nfirst answer\n</answer_A>" in user and "user: hi" in user
    assert len(user) < MAX_ANSWER_CHARS + 1000 and "characters left out" in user


@pytest.mark.parametrize(("text", "scores"), [
    ('{"A": 0.2, "B": 0.9}', (0.2, 0.9)),
    ('{"a": 1, "b": 0}', (1.0, 0.0)),
    ('```json\n{"A": 0.5, "B": 0.25}\n```', (0.5, 0.25)),
    (' {"B": 0.3, "A": 0.7, "why": "A is right"} ', (0.7, 0.3)),
    ("A: 0.2, B: 0.9", None),
    ('Here you go: {"A": 0.2, "B": 0.9}', None),
    ('{"A": 0.2}', None),
    ('{"A": 1.2, "B": 0.9}', None),
    ('{"A": -0.1, "B": 0.9}', None),
    ('{"A": true, "B": 0.9}', None),
    ('{"A": "0.2", "B": 0.9}', None),
    ('{"A": NaN, "B": 0.9}', None),
    ("[0.2, 0.9]", None),
    ("", None),
    ('{"A": 0.2, "B": 0.9}' + " " * 5000, None),
])
def test_parse_verdict_is_strict(text: str, scores: tuple[float, float] | None) -> None:
    v = parse_verdict(text)
    assert (None if v is None else (v.a, v.b)) == scores


def test_the_configured_judge_must_be_a_chat_model() -> None:
    models = [{"id": "m", "provider": "openai", "model": "m", "tier": "selfhost", "is_local": True},
              {"id": "e", "provider": "openai", "model": "e", "tier": "selfhost", "is_local": True,
               "kind": "embedding"}]
    assert parse_config({"models": models, "learning": {"judge": "m"}}).learning.judge == "m"
    with pytest.raises(ConfigError, match=r"learning\.judge = 'nope' is not a model id"):
        parse_config({"models": models, "learning": {"judge": "nope"}})
    with pytest.raises(ConfigError, match="not a chat model"):
        parse_config({"models": models, "learning": {"judge": "e"}})
