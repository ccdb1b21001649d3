import httpx

from wilton_core.registry import registry as reg
from wilton_core.registry.discovery import discover, list_upstream, same_model_name

from .conftest import model


async def test_discovers_ollama_tags_and_v1_models_and_flags_missing(upstream):
    models = [
        model("ollama-chat", "ollama", "dolphin-mistral"),
        model("ollama-vision", "ollama", "minicpm-v"),
        model("local-small", "openai", "smollm2", base_url="http://llama.test/v1", tier="selfhost",
              is_local=True),
        model("groq", "openai", "llama-3.1-8b-instant", api_key_env="GROQ_API_KEY"),
    ]
    rep = await discover(models, provider_factory=reg.default_provider_factory(httpx.MockTransport(upstream), {}))
    paths = sorted(r.url.path for r in upstream.requests)
    assert paths == ["/api/tags", "/v1/models"]    # one call per endpoint; API models not listed
    assert rep.errors == {}
    assert rep.missing == ["ollama-vision"]
    by_name = {(d.name, d.source): d for d in rep.models}
    assert by_name[("dolphin-mistral:latest", "upstream")].model_id == "ollama-chat"
    assert by_name[("qwen2.5-coder:7b", "upstream")].model_id is None
    assert by_name[("smollm2", "upstream")].model_id == "local-small"
    assert by_name[("llama-3.1-8b-instant", "config")].model_id == "groq"
    assert rep.names_at("http://ollama.test:11434") == ["dolphin-mistral:latest", "qwen2.5-coder:7b"]


async def test_unreachable_endpoint_is_reported_not_raised():
    models = [model("ollama-chat", "ollama", "dolphin-mistral", base_url="http://127.0.0.1:9")]
    rep = await discover(models, provider_factory=reg.default_provider_factory(None, {}))
    assert rep.missing == ["ollama-chat"]
    (err,) = rep.errors.values()
    assert err.startswith("unavailable")


async def test_list_upstream(upstream):
    names = await list_upstream("ollama", "http://ollama.test:11434",
                                provider_factory=reg.default_provider_factory(httpx.MockTransport(upstream), {}))
    assert names == ["dolphin-mistral:latest", "qwen2.5-coder:7b"]


def test_same_model_name():
    assert same_model_name("dolphin-mistral", "dolphin-mistral:latest")
    assert not same_model_name("qwen2.5-coder:7b", "qwen2.5-coder:14b")
