from wilton_core.core.health import Breaker, BreakerState, backoff_delay


def test_breaker_opens_after_consecutive_failures_and_half_opens_once():
    b = Breaker(failures_to_open=3, base_cooldown_s=10, max_cooldown_s=100)
    for _ in range(2):
        b.record_failure(0.0, "unavailable")
        assert b.state(0.0) == BreakerState.CLOSED
    b.record_failure(0.0, "unavailable")
    assert b.state(5.0) == BreakerState.OPEN and not b.acquire(5.0)
    assert b.state(10.0) == BreakerState.HALF_OPEN
    assert b.acquire(10.0) is True
    assert b.acquire(10.0) is False  # only one probe
    b.record_failure(10.0, "unavailable")  # probe failed: re-open, longer
    assert b.state(29.0) == BreakerState.OPEN and b.state(30.0) == BreakerState.HALF_OPEN
    assert b.acquire(30.0)
    b.record_success()
    assert b.state(30.0) == BreakerState.CLOSED and b.consecutive_failures == 0


def test_a_failure_with_retry_after_opens_for_exactly_that_long_capped():
    b = Breaker(failures_to_open=5, base_cooldown_s=10, max_cooldown_s=60)
    b.record_failure(100.0, "unavailable", retry_after=7)
    assert b.state(106.9) == BreakerState.OPEN and b.state(107.0) == BreakerState.HALF_OPEN
    b2 = Breaker(max_cooldown_s=60)
    b2.record_failure(0.0, "unavailable", retry_after=10_000)
    assert b2.cooldown_remaining(0.0) == 60


def test_a_rate_limit_defers_without_counting_a_failure():
    b = Breaker(failures_to_open=1, base_cooldown_s=10, max_cooldown_s=60)
    for _ in range(5):
        assert b.record_rate_limit(0.0, 1.0, 0.5) == 1.0
    assert b.state(0.5) == BreakerState.DEFERRED and not b.available(0.5) and not b.acquire(0.5)
    assert b.consecutive_failures == 0 and b.open_until == 0.0
    assert b.ready_at(0.5) == 1.0
    assert b.state(1.0) == BreakerState.CLOSED and b.acquire(1.0)  # back at once, no probe dance


def test_a_rate_limit_without_retry_after_backs_off_with_jitter_and_growth():
    b = Breaker(max_cooldown_s=60)
    waits = [b.record_rate_limit(0.0, None, u, backoff_base_s=0.5, backoff_max_s=30.0) for u in (0.0, 1.0, 0.0)]
    assert waits == [0.25, 1.0, 1.0]  # cap 0.5, 1, 2: at least half the cap, at most the cap
    b.record_success()
    assert b.consecutive_rate_limits == 0 and b.available(0.0)


def test_release_gives_back_a_half_open_probe_and_counts_nothing():
    b = Breaker(failures_to_open=1, base_cooldown_s=10)
    b.record_failure(0.0, "unavailable")
    assert b.acquire(10.0) and not b.acquire(10.0)
    b.release()
    assert b.consecutive_failures == 1 and b.acquire(10.0)  # the next request may probe


def test_backoff_is_full_jitter_and_capped():
    assert backoff_delay(0, 0.1, 2.0, 0.0) == 0.0
    assert backoff_delay(0, 0.1, 2.0, 0.999) < 0.1
    assert backoff_delay(3, 0.1, 2.0, 1.0) == 0.8
    assert backoff_delay(10, 0.1, 2.0, 1.0) == 2.0
