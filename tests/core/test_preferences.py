from wilton_core.core.preferences import ModelFacts, apply_preferences, preferred_ids

MODELS = [
    ModelFacts("local-small", "openai", "smollm2", "http://127.0.0.1:8081/v1", True),
    ModelFacts("ollama-chat", "ollama", "dolphin-mistral", "http://127.0.0.1:11434", True),
    ModelFacts("ollama-code", "ollama", "qwen2.5-coder:7b", "http://127.0.0.1:11434", True),
    ModelFacts("groq", "openai", "llama-3.1-8b-instant", "https://api.groq.com/openai/v1", False),
    ModelFacts("gemini", "gemini", "gemini-2.5-flash-lite", None, False),
    ModelFacts("gpt", "openai", "gpt-4o", None, False),
]
LOCAL = {m.id: m.is_local for m in MODELS}


def test_seed_env_preferences():
    prefs = preferred_ids(MODELS, {}, {"chat": "local", "vision": "gemini", "code": "groq"},
                          {"chat": "dolphin-mistral", "code": "qwen2.5-coder:7b", "vision": None})
    assert prefs["chat"][0] == "ollama-chat"
    assert prefs["system"] == prefs["chat"]
    assert prefs["code"] == ("ollama-code", "groq")
    assert prefs["vision"] == ("gemini",)


def test_config_default_comes_first_and_preferences_stay_inside_a_class():
    prefs = preferred_ids(MODELS, {"code": "gpt"}, {}, {"code": "qwen2.5-coder:7b"})
    assert prefs["code"] == ("gpt", "ollama-code")
    # a local-primary chain keeps local first; ollama-code moves to the front of the local block
    chain = ["local-small", "ollama-code", "groq", "gpt"]
    assert apply_preferences(chain, prefs["code"], LOCAL) == ["ollama-code", "local-small", "gpt", "groq"]
    # an API-primary chain keeps API first
    chain = ["groq", "gpt", "local-small", "ollama-code"]
    assert apply_preferences(chain, prefs["code"], LOCAL) == ["gpt", "groq", "ollama-code", "local-small"]
    assert apply_preferences(chain, (), LOCAL) == chain
