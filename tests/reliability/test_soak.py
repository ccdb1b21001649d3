"""A short soak (bench/soak.py, 30 s at 40 req/s): zero errors, flat RSS, nothing missing from the ledger."""

from __future__ import annotations

import pytest

from ._bench import load

soak = load("soak")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_short_soak(tmp_path) -> None:
    r = soak.soak(tmp_path, seconds=30.0, rate=40.0, concurrency=6, sample_s=2.0, warmup_s=6.0)
    assert r.errors == 0, r.error_samples
    assert r.requests >= 0.9 * 30 * 40  # the rate was really held
    assert r.router_rc == 0 and r.not_in_ledger == 0
    assert len(r.rss_samples) >= 10
    assert r.rss_growth <= 10 * soak.MB, [(t, b // soak.MB) for t, b in r.rss_samples]
