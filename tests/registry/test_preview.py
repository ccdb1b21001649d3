from wilton_core.registry.preview import routing_preview
from wilton_core.registry.registry import ProbeResult

from .conftest import model


def models():
    return [
        model("ollama-chat", "ollama", "dolphin-mistral", capability="standard"),
        model("ollama-small", "ollama", "llama3.2:3b", capability="basic"),
        model("ollama-vision", "ollama", "minicpm-v", capability="basic", supports_vision=True),
        model("groq-8b", capability="standard", api_key_env="GROQ_API_KEY", input_cost_per_mtok=0.05),
        model("flash-lite", provider="gemini", capability="standard", api_key_env="GEMINI_KEY",
              supports_vision=True, input_cost_per_mtok=0.1),
        model("gpt-4o", capability="advanced", tier="frontier", api_key_env="OPENAI_API_KEY",
              supports_vision=True),
    ]


def test_preview_without_tests_uses_configured_models():
    env = {"GROQ_API_KEY": "k", "OPENAI_API_KEY": "k"}
    p = routing_preview(models(), None, environ=env)
    assert p["chat"] == {"selfhost": "ollama-small", "edge": "groq-8b", "frontier": "gpt-4o"}
    assert p["code"]["selfhost"] == "ollama-chat"          # code: most capable first
    assert p["vision"] == {"selfhost": "ollama-vision", "edge": None, "frontier": "gpt-4o"}
    assert set(p) == {"chat", "code", "vision", "system"}


def test_preview_with_tests_keeps_only_passing_models_and_honours_defaults():
    env = {"GROQ_API_KEY": "k", "GEMINI_KEY": "k"}
    st = {
        "ollama-chat": ProbeResult("ollama-chat", "available", 800.0, 1.0),
        "ollama-small": ProbeResult("ollama-small", "failed", None, 1.0, "unavailable: x", 1),
        "ollama-vision": ProbeResult("ollama-vision", "available", 900.0, 1.0),
        "groq-8b": ProbeResult("groq-8b", "rate_limited", None, 1.0, "rate_limited: x", 1),
        "flash-lite": ProbeResult("flash-lite", "available", 300.0, 1.0),
    }
    p = routing_preview(models(), st, {"chat": "ollama-vision"}, environ=env)
    assert p["chat"]["selfhost"] == "ollama-vision"       # the configured intent default wins
    assert p["system"]["selfhost"] == "ollama-vision"     # cheapest capability that passed
    assert p["chat"]["edge"] == "flash-lite"              # available before rate-limited
    assert p["chat"]["frontier"] is None                  # gpt-4o has no key
