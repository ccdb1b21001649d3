"""End to end: the real router process, driven by the official openai SDK, over fake upstreams
that speak the real wire formats (OpenAI, Ollama, Gemini, Anthropic)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = pytest.mark.e2e

CONFIG = """
[[models]]
id = "local-a"
provider = "openai"
model = "local-a"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "standard"
supports_tools = true

[[models]]
id = "local-b"
provider = "ollama"
model = "local-b"
base_url = "{fake}"
tier = "selfhost"
is_local = true
capability = "standard"
supports_tools = true

[[models]]
id = "api-edge"
provider = "gemini"
model = "api-edge"
base_url = "{fake}"
api_key_env = "FAKE_GEMINI_KEY"
tier = "edge"
is_local = false
capability = "standard"
supports_tools = true
input_cost_per_mtok = 0.1
output_cost_per_mtok = 0.4

[[models]]
id = "api-frontier"
provider = "anthropic"
model = "api-frontier"
base_url = "{fake}"
api_key_env = "FAKE_ANTHROPIC_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
supports_tools = true
supports_vision = true
input_cost_per_mtok = 3.0
output_cost_per_mtok = 15.0

[[models]]
id = "api-missing"
provider = "openai"
model = "gpt-x"
base_url = "{fake}/v1"
api_key_env = "WILTON_TEST_UNSET_KEY"
tier = "frontier"
is_local = false

[routing]
backoff_base_s = 0.01
max_body_bytes = 65536
max_retry_after_s = 0.5
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("router-e2e")
    fake = FakeUpstream(models=["local-a", "local-b", "api-edge", "api-frontier"]).start()
    cfg = tmp / "wilton.toml"
    cfg.write_text(CONFIG.format(fake=fake.url))
    port = free_port()
    db = tmp / "wilton.db"
    env = {"WILTON_STORE_URL": f"sqlite:///{db}", "FAKE_GEMINI_KEY": "g-secret-123",
           "FAKE_ANTHROPIC_KEY": "a-secret-456", "WILTON_LEDGER_FLUSH_S": "0.05"}
    env.pop("WILTON_TEST_UNSET_KEY", None)
    # No coherence daemon here: publish a control state that keeps every auto request local-first,
    # so fallback paths are deterministic whatever the difficulty scorer says.
    from wilton_core.core.control_state import ControlState
    from wilton_core.store import open_store

    store = open_store(f"sqlite:///{db}")
    store.migrate()
    store.put_control_state(ControlState(phi_target=0.75, threshold=1.0, updated_at=time.time()))
    store.close()
    router = ManagedProcess.python_module(
        "wilton_core.router.cli", "--config", str(cfg), "--port", str(port), env=env, log=tmp / "router.log"
    ).start(f"http://127.0.0.1:{port}/readyz", timeout=60)
    base = f"http://127.0.0.1:{port}"
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=30)
    state = {"base": base, "client": client, "fake": fake, "router": router, "db": db, "sent": 0}
    yield state
    router.stop()
    fake.stop()


def _count(stack):
    stack["sent"] += 1


def test_auto_answers_with_headers(stack):
    raw = stack["client"].chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi there"}])
    _count(stack)
    r = raw.parse()
    assert raw.headers["x-wilton-model"] in {"local-a", "local-b", "api-edge", "api-frontier"}
    assert raw.headers["x-wilton-tier"] in {"selfhost", "edge", "frontier"}
    assert raw.headers["x-wilton-fallbacks"] == "0"
    assert float(raw.headers["x-wilton-overhead-ms"]) >= 0
    assert r.choices[0].message.content.startswith(f"[{raw.headers['x-wilton-model']}]")
    assert r.model == raw.headers["x-wilton-model"]
    assert r.usage.total_tokens > 0


def test_model_omitted_means_auto(stack):
    r = httpx.post(stack["base"] + "/v1/chat/completions",
                   json={"messages": [{"role": "user", "content": "hello"}]}, timeout=30)
    _count(stack)
    assert r.status_code == 200 and r.headers["x-wilton-model"]


@pytest.mark.parametrize("model", ["local-a", "local-b", "api-edge", "api-frontier"])
def test_pinned_model_each_wire_format(stack, model):
    raw = stack["client"].chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "ping"}], temperature=0.3, max_tokens=20)
    _count(stack)
    r = raw.parse()
    assert raw.headers["x-wilton-model"] == model
    assert r.choices[0].message.content == f"[{model}] ping"
    assert r.choices[0].finish_reason == "stop"


def test_params_pass_through_to_openai_upstream(stack):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                                "parameters": {"type": "object", "properties": {
                                                    "city": {"type": "string"}}}}}]
    r = stack["client"].chat.completions.create(
        model="local-a", messages=[{"role": "user", "content": "weather in Lisbon?"}], tools=tools,
        temperature=0.1, max_completion_tokens=33, stop=["END"], seed=7,
        response_format={"type": "json_object"})
    _count(stack)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and r.choices[0].finish_reason == "tool_calls"
    body = stack["fake"].last_body("local-a")
    assert body["tools"] == tools and body["temperature"] == 0.1 and body["stop"] == ["END"]
    assert body["max_completion_tokens"] == 33 and body["seed"] == 7
    assert body["response_format"] == {"type": "json_object"}


def test_tools_reach_anthropic_and_come_back_as_tool_calls(stack):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    r = stack["client"].chat.completions.create(
        model="api-frontier", messages=[{"role": "user", "content": "look it up"}], tools=tools)
    _count(stack)
    assert r.choices[0].message.tool_calls[0].function.name == "lookup"


def test_stream_with_usage_chunk(stack):
    stream = stack["client"].chat.completions.create(
        model="local-a", messages=[{"role": "user", "content": "stream me"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    _count(stack)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[local-a] stream me"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.model == "local-a" for c in chunks)


@pytest.mark.parametrize("model", ["local-b", "api-edge", "api-frontier"])
def test_stream_each_wire_format_without_usage(stack, model):
    stream = stack["client"].chat.completions.create(
        model=model, messages=[{"role": "user", "content": "flow"}], stream=True)
    chunks = list(stream)
    _count(stack)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"[{model}] flow"
    assert all(c.usage is None for c in chunks)


def test_fallback_across_class_after_429_and_500(stack):
    fake = stack["fake"]
    # a 429 whose Retry-After is past the router's wait budget (max_retry_after_s): no point waiting
    fake.script("local-a", fail=[429, 429], retry_after=1)
    fake.script("local-b", fail=[500, 500])
    try:
        # `model="local"` restricts the choice to local models: both fail, and the 503 names them
        with pytest.raises(openai.APIStatusError) as ei:
            stack["client"].chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
        _count(stack)
        assert ei.value.status_code == 503
        assert "local-a (rate_limited" in ei.value.message and "local-b (unavailable" in ei.value.message
        # with auto, the same failures fall over to the API class
        time.sleep(1.1)  # local-a's Retry-After has passed: it is tried again
        fake.script("local-a", fail=[429], retry_after=1)
        fake.script("local-b", fail=[500])
        raw = stack["client"].chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}])
        _count(stack)
        fb = raw.headers["x-wilton-fallbacks"]
        assert raw.headers["x-wilton-model"] in {"api-edge", "api-frontier"}, fb
        assert "local-a:" in fb and "local-b:" in fb
        assert raw.parse().choices[0].message.content.startswith("[api-")
    finally:
        fake.clear()


def test_stream_falls_back_before_first_byte(stack):
    fake = stack["fake"]
    fake.script("local-b", fail=[500, 500])
    fake.script("local-a", fail=[500, 500])
    try:
        stream = stack["client"].chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "x"}], stream=True)
        _count(stack)
        assert stream.headers["x-wilton-model"].startswith("api-")
        chunks = list(stream.parse())
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("[api-")
    finally:
        fake.clear()


def test_stream_dying_midway_ends_with_error_event(stack):
    fake = stack["fake"]
    fake.script("api-edge", die_after_chunks=2)
    try:
        with pytest.raises(openai.APIError):
            list(stack["client"].chat.completions.create(
                model="api-edge", messages=[{"role": "user", "content": "a long answer please"}],
                stream=True))
        _count(stack)
    finally:
        fake.clear()


def test_not_configured_and_unknown_models(stack):
    c = stack["client"]
    with pytest.raises(openai.BadRequestError) as ei:
        c.chat.completions.create(model="api-missing", messages=[{"role": "user", "content": "x"}])
    _count(stack)  # refused while routing: still a ledger row (status error, http 400)
    assert "WILTON_TEST_UNSET_KEY" in ei.value.message and "not configured" in ei.value.message
    with pytest.raises(openai.NotFoundError) as ei2:
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    _count(stack)
    assert ei2.value.body["code"] == "model_not_found"


def test_models_list(stack):
    models = {m.id: m for m in stack["client"].models.list()}
    assert {"auto", "local-a", "local-b", "api-edge", "api-frontier", "api-missing"} <= set(models)
    raw = httpx.get(stack["base"] + "/v1/models").json()
    info = {m["id"]: m.get("wilton", {}) for m in raw["data"]}
    assert info["api-missing"]["configured"] is False and "WILTON_TEST_UNSET_KEY" in info["api-missing"]["reason"]
    assert info["local-a"]["tier"] == "selfhost" and info["api-frontier"]["is_local"] is False
    # never a key in the listing
    assert "g-secret-123" not in json.dumps(raw) and "a-secret-456" not in json.dumps(raw)


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"model": "auto"}', 400, "missing_required_parameter"),
        (b'{"messages": [{"role": "user", "content": ""}]}', 400, "empty_content"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', 400, "invalid_value"),
        (b"x" * 70000, 413, "request_too_large"),
    ],
)
def test_bad_input_gets_openai_error_json(stack, content, status, code):
    r = httpx.post(stack["base"] + "/v1/chat/completions", content=content,
                   headers={"content-type": "application/json"})
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["code"] == code
    assert "Traceback" not in r.text


def test_health_endpoints(stack):
    assert httpx.get(stack["base"] + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(stack["base"] + "/readyz").json()
    # the local models may still be cooling down after the fallback tests; the API ones are usable
    assert ready["ready"] is True and {"api-edge", "api-frontier"} <= set(ready["api_models"])
    assert "wilton_router_overhead_seconds_bucket" in httpx.get(stack["base"] + "/metrics").text
    assert httpx.get(stack["base"] + "/nope").status_code == 404
    assert httpx.get(stack["base"] + "/v1/chat/completions").status_code == 405


def test_zz_every_request_is_in_the_ledger_after_graceful_stop(stack):
    from wilton_core.store import open_store

    time.sleep(0.2)
    rc = stack["router"].stop()
    assert rc == 0, stack["router"].log_text()[-2000:]
    store = open_store(f"sqlite:///{stack['db']}")
    try:
        n = store.count_ledger()
        rows = store.query("SELECT status, error_class, model_id, fallbacks, tried, cost_usd, tokens_in "
                           "FROM ledger")
        captured = store.query("SELECT COUNT(*) FROM request_prompts")[0][0]
    finally:
        store.close()
    assert n == stack["sent"]
    assert captured == 0  # prompt text is never stored unless the operator opts in
    statuses = {r[0] for r in rows}
    assert {"ok", "error", "stream_error"} <= statuses
    # the stream that died mid-way is recorded as such, against the model that was streaming
    assert any(r[0] == "stream_error" and r[2] == "api-edge" for r in rows)
    # fallbacks are counted and the models tried are named
    assert any(r[3] >= 2 and "local-a" in r[4] and "local-b" in r[4] for r in rows if r[0] == "ok")
    # API answers cost money, local ones do not
    assert any(r[5] > 0 for r in rows if r[2] in ("api-edge", "api-frontier") and r[0] == "ok")
    assert all(r[5] == 0 for r in rows if r[2].startswith("local-"))
    log = stack["router"].log_text()
    assert "g-secret-123" not in log and "a-secret-456" not in log
