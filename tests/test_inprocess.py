"""The in-process API (wilton_core.api, wilton_core.models, the package root) over the router's
real code path, with upstreams faked at the wire by httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from wilton_core.api import defaults
from wilton_core.api.engine import InProcessRouter
from wilton_core.api.manager import FallbackManager, describe_error
from wilton_core.api.ollama_client import OllamaClient
from wilton_core.api.plan import (
    PinCandidate,
    coerce_intent,
    merge_chain,
    preferred_models,
    resolve_model,
    transient_ollama_model,
    usable_pins,
)
from wilton_core.config import StackConfig, parse_config
from wilton_core.core.intent import Intent, IntentDefaults, intent_defaults_from_env
from wilton_core.errors import NoHealthyModelError, RequestError, StoreError, UnavailableError
from wilton_core.models import DolphinChat, MiniCPMVision, QwenCoder
from wilton_core.models.chat import LUNA_SYSTEM_PROMPT
from wilton_core.models.vision import image_data_url
from wilton_core.store import open_store
from wilton_core.store.sql import SqlStore
from wilton_core.testing.fake_wire import build_reply, parse_request, render_complete

SECRET = "sk-inprocess-test-secret-0123456789"
OLLAMA = "http://ollama.test:11434"
ENV = {"OLLAMA_HOST": OLLAMA, "API_KEY": SECRET, "CHAT_LOCAL_MODEL": "dolphin-mistral",
       "CODE_LOCAL_MODEL": "qwen2.5-coder:7b", "VISION_LOCAL_MODEL": "minicpm-v"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def config() -> StackConfig:
    def m(mid: str, provider: str, upstream: str, local: bool, **kw: Any) -> dict[str, Any]:
        base = "http://local.test:8081/v1" if provider == "openai" and local else (
            "http://api.test/v1" if provider == "openai" else OLLAMA)
        return dict(id=mid, provider=provider, model=upstream, base_url=base, tier="selfhost" if local else "edge",
                    is_local=local, timeout_s=2.0, **kw)

    return parse_config({
        "routing": {"max_attempts_per_model": 1, "backoff_base_s": 0.0},
        "models": [
            m("local-small", "openai", "smollm2", True, capability="basic"),
            m("ollama-chat", "ollama", "dolphin-mistral", True),
            m("ollama-code", "ollama", "qwen2.5-coder:7b", True),
            m("ollama-vision", "ollama", "minicpm-v", True, supports_vision=True),
            m("api-edge", "openai", "api-edge", False, api_key_env="API_KEY", supports_tools=True,
              supports_vision=True, input_cost_per_mtok=1.0),
        ],
    })


@dataclass
class Upstream:
    """OpenAI and Ollama /api/chat at the transport layer; `failing` upstream names answer 500."""

    failing: set[str] = field(default_factory=set)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (url, model, body)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        wire = "ollama" if request.url.path == "/api/chat" else "openai"
        self.calls.append((str(request.url), body["model"], body))
        if body["model"] in self.failing:
            return httpx.Response(500, json={"error": {"message": f"boom (key {SECRET[:6]}...)"}})
        req = parse_request(wire, body)
        return httpx.Response(200, content=render_complete(req, build_reply(req)),
                              headers={"content-type": "application/json"})

    def models(self) -> list[str]:
        return [m for _, m, _ in self.calls]


class FlatScorer:
    """A constant difficulty: these tests are about the API layer, not the learned scorer."""

    def score(self, messages_or_text: Any, intent: Intent | None = None) -> float:
        return 0.1


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    yield s
    s.close()


@pytest.fixture
async def router(upstream: Upstream, store: SqlStore) -> Any:
    r = InProcessRouter(config(), store=store, environ=ENV, transport=httpx.MockTransport(upstream.handler),
                        scorer=FlatScorer(), replica="test")
    yield r
    await r.aclose()


def ledger(r: InProcessRouter) -> list[dict[str, Any]]:
    assert r.flush(5.0)
    assert r.store is not None
    cols = ("model_id", "status", "fallbacks", "tried", "intent", "replica", "tokens_in", "tokens_out")
    rows = r.store.query(f"SELECT {', '.join(cols)} FROM ledger ORDER BY ts")
    return [dict(zip(cols, row, strict=True)) for row in rows]


# ---- pure planning --------------------------------------------------------------------------

def test_resolve_model_prefers_ids_then_local_ollama_matches() -> None:
    cfg = parse_config({"models": [
        dict(id="api-q", provider="openai", model="qwen", tier="edge", is_local=False),
        dict(id="lcpp-q", provider="openai", model="qwen", tier="selfhost", is_local=True),
        dict(id="oll-q", provider="ollama", model="qwen", tier="selfhost", is_local=True),
    ]})
    assert resolve_model("qwen", cfg.models) == "oll-q"
    assert resolve_model("api-q", cfg.models) == "api-q"
    assert resolve_model("api-q", cfg.models, local_only=True) is None
    assert resolve_model("missing", cfg.models) is None


def test_preferred_models_follow_the_seed_env_and_config_defaults() -> None:
    cfg = config()
    env = intent_defaults_from_env(ENV)
    assert preferred_models(Intent.CHAT, cfg.models, {}, env) == ["ollama-chat"]
    assert preferred_models(Intent.SYSTEM, cfg.models, {}, env) == ["ollama-chat"]
    assert preferred_models(Intent.CODE, cfg.models, {}, env) == ["ollama-code"]
    # an explicit request comes first, then the intent default; auto names pin nothing
    assert preferred_models(Intent.CODE, cfg.models, {}, env, requested="smollm2") == ["local-small", "ollama-code"]
    assert preferred_models(Intent.CHAT, cfg.models, {}, env, requested="auto") == ["ollama-chat"]
    # config intent_defaults (an id) come before the env's model name; only local ones are pinned
    assert preferred_models(Intent.CHAT, cfg.models, {"chat": "local-small"}, env) == ["local-small", "ollama-chat"]
    assert preferred_models(Intent.CHAT, cfg.models, {"chat": "api-edge"}, env) == ["ollama-chat"]
    # CHAT_PROVIDER=gemini: chat is not held on a local model
    assert preferred_models(Intent.CHAT, cfg.models, {}, IntentDefaults(chat_provider="gemini",
                                                                         chat_local_model="dolphin-mistral")) == []
    assert preferred_models(Intent.CHAT, cfg.models, {}, IntentDefaults()) == []


def test_usable_pins_drop_models_that_cannot_serve() -> None:
    c = {
        "a": PinCandidate("a", True, True, False, False),
        "v": PinCandidate("v", True, True, True, False),
        "nokey": PinCandidate("nokey", False, False, True, True),
        "api": PinCandidate("api", True, False, True, True),
    }
    assert usable_pins(["a", "v", "nokey", "zz"], c, needs_vision=False, needs_tools=False) == ["a", "v"]
    assert usable_pins(["a", "v", "api"], c, needs_vision=True, needs_tools=False) == ["v", "api"]
    assert usable_pins(["a", "v", "api"], c, needs_vision=False, needs_tools=True) == ["api"]
    assert usable_pins(["a", "api"], c, needs_vision=False, needs_tools=False, only_local=False) == ["api"]
    assert merge_chain(["b", "a"], ["a", "c", "b"]) == ["b", "a", "c"]


def test_transient_model_and_intent_coercion() -> None:
    m = transient_ollama_model("hf.co/org/model:Q4 K", OLLAMA)
    assert (m.id, m.model, m.provider, m.is_local, m.base_url) == (
        "ollama/hf.co/org/model:Q4_K", "hf.co/org/model:Q4 K", "ollama", True, OLLAMA)
    assert coerce_intent("CODE") is Intent.CODE and coerce_intent(Intent.VISION) is Intent.VISION
    with pytest.raises(ValueError, match="unknown intent 'poetry'"):
        coerce_intent("poetry")


def test_image_data_url_sniffs_the_type() -> None:
    b64 = base64.b64encode(PNG).decode()
    assert image_data_url(b64) == f"data:image/png;base64,{b64}"
    assert image_data_url(b"\xff\xd8\xff\xe0rest").startswith("data:image/jpeg;base64,")
    assert image_data_url("data:image/gif;base64,R0lG") == "data:image/gif;base64,R0lG"
    assert image_data_url(b64, mime="image/webp").startswith("data:image/webp;base64,")


def test_describe_error_is_readable() -> None:
    assert describe_error(UnavailableError("upstream 500", provider="ollama")) == "unavailable: upstream 500"
    assert describe_error(StoreError("cannot open")) == "store unavailable: cannot open"
    assert describe_error(NoHealthyModelError("No eligible model", [])) == "No eligible model"


# ---- the fallback manager over the router -----------------------------------------------------

async def test_generate_with_fallback_pins_the_intent_default_and_writes_the_ledger(
        router: InProcessRouter, upstream: Upstream) -> None:
    manager = FallbackManager(router)
    text, error, ok = await manager.generate_with_fallback(prompt="Explique Python", intent=Intent.CODE)
    assert (text, error, ok) == ("[qwen2.5-coder:7b] Explique Python", None, True)
    assert upstream.calls[0][0] == f"{OLLAMA}/api/chat"
    rows = ledger(router)
    assert [(r["model_id"], r["status"], r["replica"]) for r in rows] == [("ollama-code", "ok", "test")]
    assert rows[0]["tokens_in"] > 0 and rows[0]["tokens_out"] > 0


async def test_options_reach_the_upstream(router: InProcessRouter, upstream: Upstream) -> None:
    r = await FallbackManager(router).generate("Oi", intent="chat", system="Seja breve.", temperature=0.3,
                                               max_tokens=12)
    assert r.model == "ollama-chat" and r.is_local and r.tier == "selfhost" and r.fallbacks == ()
    body = upstream.calls[-1][2]
    assert body["messages"][0] == {"role": "system", "content": "Seja breve."}
    assert body["options"] == {"temperature": 0.3, "num_predict": 12}


async def test_a_failing_default_falls_back_to_the_routers_chain(router: InProcessRouter,
                                                                 upstream: Upstream) -> None:
    upstream.failing.add("qwen2.5-coder:7b")
    r = await FallbackManager(router).generate("Funcao para ordenar lista", intent=Intent.CODE)
    assert r.model != "ollama-code" and r.text.endswith("Funcao para ordenar lista")
    assert r.fallbacks == ("ollama-code:unavailable",)
    assert upstream.models()[0] == "qwen2.5-coder:7b"
    [row] = ledger(router)
    assert row["status"] == "ok" and row["fallbacks"] == 1 and row["tried"] == "ollama-code"


async def test_an_unknown_model_name_is_only_a_preference(router: InProcessRouter, upstream: Upstream) -> None:
    text, error, ok = await FallbackManager(router).generate_with_fallback("Oi", model="no-such-model",
                                                                           intent=Intent.CHAT)
    assert ok and error is None and text == "[dolphin-mistral] Oi"


async def test_total_failure_is_a_triple_not_an_exception(router: InProcessRouter, upstream: Upstream) -> None:
    upstream.failing.update({"smollm2", "dolphin-mistral", "qwen2.5-coder:7b", "minicpm-v", "api-edge"})
    text, error, ok = await FallbackManager(router).generate_with_fallback("Explique Python", intent=Intent.CHAT)
    assert text is None and ok is False
    assert error is not None and error.startswith("No eligible model could serve the request")
    assert "ollama-chat (unavailable)" in error and "api-edge" in error
    assert SECRET not in error and SECRET[8:] not in error
    assert upstream.models()[0] == "dolphin-mistral"
    [row] = ledger(router)
    assert row["status"] == "error" and row["fallbacks"] >= 2


async def test_store_failure_is_reported_not_raised(tmp_path: Path) -> None:
    from wilton_core.settings import Settings

    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = InProcessRouter(config(), settings=Settings(store_url=f"sqlite:///{blocker}/sub/w.db"), environ=ENV,
                        scorer=FlatScorer())
    text, error, ok = await FallbackManager(r).generate_with_fallback("Oi")
    assert (text, ok) == (None, False) and error is not None and error.startswith("store unavailable")
    await r.aclose()


async def test_invalid_requests_are_request_errors(router: InProcessRouter, upstream: Upstream) -> None:
    text, error, ok = await FallbackManager(router).generate_with_fallback("Oi", temperature=5)
    assert (text, ok) == (None, False) and error == "'temperature' must be a number between 0.0 and 2.0."
    with pytest.raises(RequestError, match="at least one message"):
        await router.complete({"messages": []})
    assert upstream.calls == []


async def test_tools_go_only_to_tool_capable_models(router: InProcessRouter, upstream: Upstream) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}}}}}]
    r = await FallbackManager(router).complete([{"role": "user", "content": "Tempo em Lisboa?"}], tools=tools)
    assert r.model == "api-edge" and not r.is_local
    assert r.finish_reason == "tool_calls" and r.tool_calls[0]["function"]["name"] == "get_weather"
    assert upstream.calls[-1][2]["tools"] == tools  # openai-compatible: passed through verbatim


# ---- the Ollama client ----------------------------------------------------------------------

async def test_ollama_client_pins_a_configured_model(router: InProcessRouter, upstream: Upstream) -> None:
    resp = await OllamaClient(router).generate(prompt="Ola!", model="dolphin-mistral", temperature=0.7)
    assert resp.text == "[dolphin-mistral] Ola!"
    assert (resp.model, resp.model_id) == ("dolphin-mistral", "ollama-chat")
    assert resp.tokens == resp.prompt_tokens + resp.completion_tokens > 0 and resp.latency > 0
    assert upstream.calls[-1][2]["options"] == {"temperature": 0.7}
    assert [r["model_id"] for r in ledger(router)] == ["ollama-chat"]


async def test_ollama_client_calls_an_unconfigured_name_at_ollama_host(router: InProcessRouter,
                                                                       upstream: Upstream) -> None:
    client = OllamaClient(router)
    resp = await client.generate("Ola!", "llama3.2:1b")
    assert resp.text == "[llama3.2:1b] Ola!" and resp.model_id == "ollama/llama3.2:1b"
    assert upstream.calls[-1][0] == f"{OLLAMA}/api/chat"
    await client.generate("De novo", "llama3.2:1b")  # the transient service is reused
    assert [r["model_id"] for r in ledger(router)] == ["ollama/llama3.2:1b"] * 2
    assert router.latency.model_latency("ollama/llama3.2:1b") is not None


async def test_ollama_client_failure_raises_and_is_recorded(router: InProcessRouter, upstream: Upstream) -> None:
    upstream.failing.add("dolphin-mistral")
    with pytest.raises(NoHealthyModelError, match=r"ollama-chat \(unavailable\)"):
        await OllamaClient(router).generate("Ola!")  # CHAT_LOCAL_MODEL is the default
    assert upstream.models() == ["dolphin-mistral"]  # pinned: no fallback here
    assert [(r["model_id"], r["status"]) for r in ledger(router)] == [("ollama-chat", "error")]


async def test_ollama_client_lists_models_over_api_tags() -> None:
    def tags(request: httpx.Request) -> httpx.Response:
        assert request.url == httpx.URL(f"{OLLAMA}/api/tags")
        return httpx.Response(200, json={"models": [{"name": "dolphin-mistral:latest"}, {"name": "minicpm-v:8b"}]})

    client = OllamaClient(InProcessRouter(config(), environ=ENV), transport=httpx.MockTransport(tags))
    assert await client.list_models() == ["dolphin-mistral:latest", "minicpm-v:8b"]
    assert await client.is_available()
    assert await client.has_model("dolphin-mistral") and not await client.has_model("minicpm-v")

    down = OllamaClient(InProcessRouter(config(), environ=ENV),
                        transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    assert not await down.is_available()


# ---- specialised models ---------------------------------------------------------------------

async def test_dolphin_chat_speaks_as_luna(router: InProcessRouter, upstream: Upstream) -> None:
    chat = DolphinChat(manager=FallbackManager(router), environ={})
    assert chat.model == "dolphin-mistral"
    answer = await chat.chat("Como voce esta?", history=[{"role": "user", "content": "Oi"},
                                                         {"role": "assistant", "content": "Oi!"}])
    assert answer == "[dolphin-mistral] Como voce esta?"
    body = upstream.calls[-1][2]
    assert body["messages"][0] == {"role": "system", "content": LUNA_SYSTEM_PROMPT}
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["options"]["temperature"] == 0.7


async def test_qwen_coder_uses_the_code_model(router: InProcessRouter, upstream: Upstream) -> None:
    coder = QwenCoder(manager=FallbackManager(router), environ={"CODE_LOCAL_MODEL": "qwen2.5-coder:7b"})
    answer = await coder.generate("Funcao para ordenar lista")
    assert answer == "[qwen2.5-coder:7b] Funcao para ordenar lista"


async def test_vision_sends_the_image_to_a_vision_model(router: InProcessRouter, upstream: Upstream) -> None:
    vision = MiniCPMVision(manager=FallbackManager(router), environ={})
    answer = await vision.describe(base64.b64encode(PNG).decode(), prompt="O que ha aqui?")
    assert answer == "[minicpm-v] O que ha aqui? [images:1]"
    url, model, body = upstream.calls[-1]
    assert (url, model) == (f"{OLLAMA}/api/chat", "minicpm-v")
    assert body["messages"][-1]["images"] == [base64.b64encode(PNG).decode()]


async def test_vision_falls_back_to_a_vision_capable_api_model(router: InProcessRouter,
                                                               upstream: Upstream) -> None:
    upstream.failing.add("minicpm-v")
    answer = await MiniCPMVision(manager=FallbackManager(router), environ={}).describe(PNG)
    assert answer.startswith("[api-edge]")
    assert upstream.models() == ["minicpm-v", "api-edge"]  # text-only models are never tried


# ---- latency tracker and loops --------------------------------------------------------------

async def test_the_latency_tracker_is_the_one_the_router_records_into(router: InProcessRouter) -> None:
    tracker = router.latency
    assert tracker.get_stats()["llm"] == {"avg": None, "max": None, "p50": None, "p95": None,
                                          "target": 2.0, "count": 0}
    await FallbackManager(router).generate("Oi")
    assert router.service is not None and router.service.latency is tracker
    llm = tracker.get_stats()["llm"]
    assert llm["count"] == 1 and llm["target"] == 2.0
    assert isinstance(llm["avg"], float) and 0 < llm["avg"] == llm["max"] < 2.0


def test_a_new_event_loop_gets_fresh_services_and_the_same_ledger(upstream: Upstream, store: SqlStore) -> None:
    r = InProcessRouter(config(), store=store, environ=ENV, transport=httpx.MockTransport(upstream.handler),
                        scorer=FlatScorer())
    first = asyncio.run(FallbackManager(r).generate_with_fallback("um"))
    second = asyncio.run(FallbackManager(r).generate_with_fallback("dois"))
    assert first == ("[dolphin-mistral] um", None, True) and second == ("[dolphin-mistral] dois", None, True)
    assert r.latency.get_stats()["llm"]["count"] == 2
    r.close()
    assert store.count_ledger() == 2  # close() flushed; the store we passed in stays open
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(r.complete({"messages": [{"role": "user", "content": "x"}]}))


# ---- process-wide instances ------------------------------------------------------------------

async def test_process_wide_instances(upstream: Upstream, store: SqlStore) -> None:
    import wilton_core

    defaults.configure(config=config(), store=store, environ=ENV, transport=httpx.MockTransport(upstream.handler),
                       scorer=FlatScorer())
    try:
        manager = wilton_core.get_fallback_manager()
        assert manager is wilton_core.get_fallback_manager()
        assert wilton_core.get_ollama_client().router is manager.router is defaults.get_router()
        assert wilton_core.get_latency_tracker() is manager.router.latency
        text, _, ok = await manager.generate_with_fallback(prompt="Explique Python", intent=Intent.CHAT)
        assert ok and text == "[dolphin-mistral] Explique Python"
        assert wilton_core.get_latency_tracker().get_stats()["llm"]["count"] == 1
        defaults.reset_latency_tracker()
        assert wilton_core.get_latency_tracker().get_stats()["llm"]["count"] == 0
        defaults.reset_fallback_manager()
        assert wilton_core.get_fallback_manager() is not manager
        assert wilton_core.get_fallback_manager().router is manager.router
    finally:
        await defaults.aclose()
    assert store.count_ledger() == 1
    defaults.reset()


def test_import_is_cheap_and_the_seed_names_exist() -> None:
    code = (
        "import sys, wilton_core\n"
        "heavy = [m for m in ('httpx', 'numpy', 'pydantic', 'wilton_core.router', 'wilton_core.api.engine')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from wilton_core import detect_intent, Intent\n"
        "assert detect_intent('Escreva um codigo Python') is Intent.CODE\n"
        "assert 'httpx' not in sys.modules\n"
        "from wilton_core import get_fallback_manager, get_ollama_client, get_latency_tracker\n"
        "from wilton_core.models import DolphinChat, QwenCoder, MiniCPMVision\n"
        "assert set(wilton_core.__all__) <= set(dir(wilton_core))\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
