from pathlib import Path

import pytest

from wilton_core.cli.main import main as wiltonctl
from wilton_core.config import default_config, load_config, parse_config
from wilton_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

GOOD = {"id": "m", "provider": "openai", "model": "x", "tier": "selfhost", "is_local": True}


def test_example_config_is_valid():
    cfg = load_config(ROOT / "examples" / "wilton.toml")
    assert {m.tier for m in cfg.models} == {"selfhost", "edge", "frontier"}
    assert cfg.routing.phi_target == 0.75 and cfg.latency_targets.llm == 2.0


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ({**GOOD, "colour": "red"}, "models[0] (id='m'): 'colour': unknown key"),
        ({**GOOD, "tier": "cloud"}, "models[0] (id='m'): 'tier'"),
        ({**GOOD, "is_local": "maybe"}, "models[0] (id='m'): 'is_local'"),
        ({**GOOD, "context_window": -1}, "'context_window'"),
        ({**GOOD, "input_cost_per_mtok": float("nan")}, "'input_cost_per_mtok'"),
        ({**GOOD, "api_key_env": "sk-live abc"}, "never the key itself"),
        ({k: v for k, v in GOOD.items() if k != "provider"}, "'provider': required key is missing"),
    ],
)
def test_bad_models_name_model_and_key(model, needle):
    with pytest.raises(ConfigError) as ei:
        parse_config({"models": [model]}, "f.toml")
    assert needle in str(ei.value)


def test_duplicate_ids_and_bad_routing():
    with pytest.raises(ConfigError, match="duplicate model id"):
        parse_config({"models": [GOOD, GOOD]})
    with pytest.raises(ConfigError, match="phi_target"):
        parse_config({"models": [GOOD], "routing": {"phi_target": 1.5}})


def test_load_errors_are_readable(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[models]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("[routing]\nphi_target = 0.5\n")
    with pytest.raises(ConfigError, match="no models declared"):
        load_config(empty)


def test_keys_are_read_from_env_at_call_time_under_seed_names():
    cfg = default_config({})
    by = cfg.by_id()
    assert by["local-small"].is_configured({})
    assert not by["gemini-flash-lite"].is_configured({})
    assert by["gemini-flash-lite"].is_configured({"GEMINI_KEY": "k"})
    assert by["gemini-flash-lite"].api_key({"GOOGLE_API_KEY": "g"}) == "g"
    assert "ollama-chat" not in by
    with_ollama = default_config({"OLLAMA_HOST": "http://127.0.0.1:11434", "CODE_LOCAL_MODEL": "qwen2.5-coder:7b"})
    assert with_ollama.by_id()["ollama-code"].model == "qwen2.5-coder:7b"


def test_wiltonctl_config_check(tmp_path, capsys):
    assert wiltonctl(["config", "check", str(ROOT / "examples" / "wilton.toml")]) == 0
    assert "8 models" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[[models]]\nid = "a"\nprovider = "openai"\nmodel = "x"\ntier = "selfhost"\nis_local = true\nfoo = 1\n')
    assert wiltonctl(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "models[0] (id='a'): 'foo': unknown key" in err and "Traceback" not in err
