"""OpenTelemetry: one span per routed request with the routing decision, a child span per upstream
attempt; off (no OTEL_EXPORTER_OTLP_ENDPOINT) means no tracing object and no SDK import."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from wilton_core.config import parse_config
from wilton_core.router.app import RouterApp
from wilton_core.router.service import RouterService
from wilton_core.router.tracing import Tracing, tracing_from_env
from wilton_core.testing.fake_upstream import FakeUpstream

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the [otel] extra is not installed")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(models=["m1", "m2"]) as f:
        yield f


def _config(url: str):
    return parse_config({"models": [
        {"id": "m1", "provider": "openai", "model": "m1", "base_url": url + "/v1", "tier": "selfhost",
         "is_local": True},
        {"id": "m2", "provider": "ollama", "model": "m2", "base_url": url, "tier": "selfhost", "is_local": True},
    ], "routing": {"backoff_base_s": 0.001, "probe_models": False}})


async def test_request_span_with_decision_and_attempt_children(fake) -> None:
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    svc = RouterService(_config(fake.url), environ={}, tracing=Tracing(provider.get_tracer("t")))
    await svc.start()
    # whichever model the chain tries first fails once (the retry on it then answers)
    fake.script("m1", fail=[500])
    fake.script("m2", fail=[500])
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=RouterApp(svc)), base_url="http://r") as c:
            r = await c.post("/v1/chat/completions", json={"model": "local", "messages": [
                {"role": "user", "content": "hello"}]})
            assert r.status_code == 200
            fake.clear()
            r2 = await c.post("/v1/messages", json={"model": "m2", "max_tokens": 9, "stream": True,
                                                    "messages": [{"role": "user", "content": "hi"}]})
            assert r2.status_code == 200 and b"message_stop" in r2.content
    finally:
        fake.clear()
        await svc.stop()
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "wilton.request"]
    assert len(roots) == 2
    first = next(s for s in roots if s.attributes["wilton.request_id"] == r.headers["x-request-id"])
    a = first.attributes
    assert a["wilton.status"] == "ok" and a["wilton.model"] == r.headers["x-wilton-model"]
    assert a["wilton.intent"] and "wilton.difficulty" in a and "wilton.threshold" in a
    assert a["wilton.fallbacks"] >= 1 and a["wilton.tried"] and a["wilton.local"] is True
    children = [s for s in spans if s.name == "wilton.upstream" and s.parent and
                s.parent.span_id == first.context.span_id]
    assert [c.attributes["wilton.model"] for c in children][-1] == a["wilton.model"]
    assert any(c.attributes.get("wilton.error") == "unavailable" for c in children)
    assert all(first.start_time <= c.start_time and c.end_time <= first.end_time for c in children)
    streamed = next(s for s in roots if s is not first)
    assert streamed.attributes["wilton.stream"] is True and streamed.attributes["wilton.model"] == "m2"


def test_off_without_the_endpoint_and_no_sdk_import() -> None:
    assert tracing_from_env({}) is None
    code = ("import sys; from wilton_core.router.service import RouterService; "
            "from wilton_core.router.tracing import tracing_from_env; tracing_from_env({}); "
            "print(any(m.startswith('opentelemetry') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_on_with_the_endpoint() -> None:
    t = tracing_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert isinstance(t, Tracing)
    t.shutdown()
