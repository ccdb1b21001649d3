"""Fault injection on the request path: the real router process over scripted fake upstreams.

The figures of bench/faults.py, asserted: every client request succeeds while any eligible model
is healthy; faults after a stream's first byte end in a terminal error (never a hang); a healed
model is used again within the breaker's bound.
"""

from __future__ import annotations

import time

import pytest

from ._bench import load

faults = load("faults")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = faults.RouterStack(tmp_path_factory.mktemp("faults")).start()
    yield s
    s.stop()


@pytest.mark.parametrize("scenario", faults.SCENARIOS, ids=[s.key for s in faults.SCENARIOS])
def test_every_request_succeeds_while_a_model_is_healthy(stack, scenario) -> None:
    res = faults.run_scenario(stack, scenario, requests=24)
    assert len(res.results) == 24
    assert res.success_share == 1.0, [(r.status, r.error) for r in res.failures]
    # the healthy models did the work; a broken one answered only when its script let it
    assert set(res.served_by) <= set(scenario.healthy) | {s["model"] for s in scenario.scripts if s.get("flap")}


def test_fault_scenarios_really_fault(stack) -> None:
    """Guard against a scenario that passes because nothing broke: clients saw the fallbacks."""
    res = faults.run_scenario(stack, faults.SCENARIOS[4], requests=8)  # resets on both local models
    assert res.success_share == 1.0
    assert any("local-a:unavailable" in r.fallbacks for r in res.results), [r.fallbacks for r in res.results]
    assert any("local-b:unavailable" in r.fallbacks for r in res.results)


@pytest.mark.parametrize("kind", ["stall", "die"])
def test_fault_after_first_byte_ends_with_an_error_not_a_hang(stack, kind) -> None:
    ms = faults.run_midstream(stack, kind, requests=5)
    assert ms.hung_or_silent == 0, [(r.status, r.error) for r in ms.results]
    assert ms.error_events >= 1
    # a stall is cut by the model's read timeout; a dropped connection is seen at once
    bound = faults.MODEL_TIMEOUT_S + 0.5 if kind == "stall" else 0.5
    assert ms.max_latency_s < bound


def test_midstream_failures_are_in_the_ledger_as_stream_errors(stack) -> None:
    faults.run_midstream(stack, "die", requests=2)
    time.sleep(stack.flush_s * 3)
    rows = faults.ledger_rows(stack.store_url)
    assert any(r[1] == "stream_error" and r[3] == "local-a" for r in rows)


def test_recovered_model_is_used_again_within_the_breaker_bound(stack) -> None:
    rec = faults.measure_recovery(stack, outage_s=1.5)
    assert rec.during_outage_success == 1.0
    assert rec.recovery_s is not None and rec.recovery_s <= rec.bound_s


def test_no_api_key_in_the_router_log(stack) -> None:
    log = stack.log_text()
    assert log is not None
    for key in faults.API_KEYS.values():
        assert key not in log
