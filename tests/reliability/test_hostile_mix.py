"""The figures of bench/hostile_mix.py, asserted on a short run: a legitimate client next to hostile
clients and misbehaving upstreams is served every time, no breaker opens because of what a client
sent, the hostile requests get 4xx (never 5xx), and every routed request is a ledger row."""

from __future__ import annotations

import httpx
import pytest

from ._bench import load

mix = load("hostile_mix")
faults = load("faults")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = faults.RouterStack(tmp_path_factory.mktemp("hostile")).start()
    yield s
    s.stop()


# models a scenario breaks on purpose (their breakers may open: an upstream really failed)
BROKEN = {"429-storm": {"local-a", "local-b", "api-b"}}


@pytest.mark.parametrize("scenario", mix.SCENARIOS, ids=[s.key for s in mix.SCENARIOS])
def test_the_legitimate_client_does_not_notice(stack, scenario) -> None:
    res = mix.run_mix(stack, scenario, seconds=2.0)
    assert len(res.legit) >= 20
    assert res.legit_success == 1.0, res.legit_failures
    assert res.hostile_5xx == 0, dict(res.hostile_statuses)
    if scenario.hostile_body is not None:
        assert set(res.hostile_statuses) == {400}, dict(res.hostile_statuses)
    assert set(res.breakers_opened) <= BROKEN.get(scenario.key, set()), res.breakers_opened
    assert res.ledger == res.routed
    if scenario.key == "context-too-long":
        # the model that refused the long prompts serves at once once the burst is over (not cooling down)
        r = httpx.post(stack.url + "/v1/chat/completions", timeout=10,
                       json={"model": "local-a", "messages": [{"role": "user", "content": "still there?"}]})
        assert r.status_code == 200 and r.headers["x-wilton-model"] == "local-a", r.text
