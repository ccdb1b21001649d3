"""The router's own overhead (x-wilton-overhead-ms and the histogram) is total minus upstream time.

An upstream that takes 150 ms per reply makes the difference plain: if the upstream's time were
not subtracted the header would read at least 150 ms.
"""

from __future__ import annotations

import time

import httpx
import pytest

from wilton_core.config import parse_config
from wilton_core.router.app import RouterApp
from wilton_core.router.service import RouterService
from wilton_core.testing.fake_upstream import FakeUpstream

UPSTREAM_S = 0.15


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(models=["m1"]).start() as f:
        yield f


def _config(url: str):
    return parse_config({"models": [{"id": "m1", "provider": "openai", "model": "m1", "base_url": url + "/v1",
                                     "tier": "selfhost", "is_local": True, "capability": "standard"}],
                         "routing": {"probe_models": False}})


@pytest.mark.parametrize("stream", [False, True])
async def test_overhead_excludes_the_upstream_time(fake: FakeUpstream, stream: bool) -> None:
    fake.clear()
    fake.script("m1", latency_ms=UPSTREAM_S * 1000, ttft_ms=UPSTREAM_S * 1000)
    seen: list[float] = []
    svc = RouterService(_config(fake.url), overhead_observer=seen.append, environ={})
    await svc.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=RouterApp(svc)), base_url="http://r") as c:
            body = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}], "stream": stream}
            t0 = time.perf_counter()
            r = await c.post("/v1/chat/completions", json=body)
            total_s = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            header_s = float(r.headers["x-wilton-overhead-ms"]) / 1000
    finally:
        await svc.stop()
    assert len(seen) == 1 and seen[0] == pytest.approx(header_s, abs=1e-6)  # header and histogram agree
    assert total_s >= UPSTREAM_S  # the upstream really was slow
    assert 0 < header_s < UPSTREAM_S / 3, header_s
