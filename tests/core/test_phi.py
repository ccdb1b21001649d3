import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wilton_core.core.phi import PhiEstimator, PhiEvent, phi_brute_force


def test_empty_is_none() -> None:
    assert PhiEstimator(60).phi(100.0) is None


def test_window_edges() -> None:
    e = PhiEstimator(10.0)
    e.add(0.0, True)
    e.add(5.0, False)
    assert e.phi(9.9) == 0.5
    assert e.phi(10.0) == 0.0    # the event at t=0 left: the window is (now - 10, now]
    assert e.phi(15.0) is None


def test_tokens_basis() -> None:
    e = PhiEstimator(100.0, "tokens")
    e.add(1.0, True, 300)
    e.add(2.0, False, 100)
    assert e.phi(3.0) == 0.75
    assert e.counts(3.0) == (2, 1, 400, 300)


def test_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        PhiEstimator(0)
    with pytest.raises(ValueError):
        PhiEstimator(10, "bytes")  # type: ignore[arg-type]


events = st.lists(
    st.tuples(st.floats(0, 1000, allow_nan=False), st.booleans(), st.integers(0, 5000)), max_size=200
)


@settings(max_examples=150, deadline=None)
@given(evs=events, window=st.floats(0.5, 500), basis=st.sampled_from(["requests", "tokens"]),
       queries=st.lists(st.floats(0, 1200, allow_nan=False), min_size=1, max_size=8))
def test_matches_brute_force(evs, window, basis, queries) -> None:
    est = PhiEstimator(window, basis)
    for ts, loc, tok in evs:  # deliberately unordered: late events are inserted in place
        est.add(ts, loc, tok)
    all_events = [PhiEvent(ts, loc, tok) for ts, loc, tok in evs]
    for now in sorted(queries):
        got = est.phi(now)
        want = phi_brute_force(all_events, now, window, basis)
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, abs=1e-12)


def test_streaming_use_matches_brute_force() -> None:
    rng = random.Random(3)
    est = PhiEstimator(30.0)
    seen: list[PhiEvent] = []
    t = 0.0
    for _ in range(5000):
        t += rng.expovariate(20)
        loc = rng.random() < 0.75
        est.add(t, loc)
        seen.append(PhiEvent(t, loc))
        if rng.random() < 0.05:
            assert est.phi(t) == pytest.approx(phi_brute_force(seen, t, 30.0), abs=1e-12)
    assert len(est) < 1000  # old events are evicted, memory stays bounded
