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


@pytest.mark.parametrize(
    ("field", "value"),
    [("is_local", "yes"), ("is_local", 1), ("context_window", "8192"), ("context_window", 8192.0),
     ("supports_tools", "true"), ("timeout_s", "30")],
)
def test_wrong_types_are_errors_not_coercions(field, value):
    # issue 18: `is_local = "yes"` and `context_window = "8192"` used to pass `config check`
    with pytest.raises(ConfigError) as ei:
        parse_config({"models": [{**GOOD, field: value}]}, "f.toml")
    assert f"models[0] (id='m'): '{field}'" in str(ei.value)


def test_ints_still_fill_float_fields():
    cfg = parse_config({"models": [{**GOOD, "timeout_s": 30, "input_cost_per_mtok": 1}],
                        "routing": {"window_s": 60}})
    assert cfg.models[0].timeout_s == 30.0 and cfg.routing.window_s == 60.0


def test_every_problem_is_reported_in_one_run(tmp_path, capsys):
    # issue 18: a duplicate id used to appear only once the unknown key was fixed
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[models]]\nid = "a"\nprovider = "openai"\nmodel = "x"\ntier = "selfhost"\nis_local = "yes"\n'
        '[[models]]\nid = "a"\nprovider = "openai"\nmodel = "x"\ntier = "selfhost"\nis_local = true\ncolour = 1\n'
        '[[models]]\nid = "b"\nprovider = "openai"\nmodel = "x"\ntier = "selfhost"\nis_local = true\n'
        'context_window = "8192"\n'
        '[routing]\nphi_target = 2\n'
    )
    assert wiltonctl(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    for needle in ("models[0] (id='a'): 'is_local'", "models[1] (id='a'): 'colour': unknown key",
                   "models[1] (id='a'): 'id': duplicate model id (also models[0])",
                   "models[2] (id='b'): 'context_window'", "routing: 'phi_target'"):
        assert needle in err, (needle, err)
    assert "Traceback" not in err


def test_one_gemini_key_list_everywhere():
    from wilton_core.config import GEMINI_KEY_ENVS
    from wilton_core.insight.backends import GEMINI_KEY_ENVS as insight_list

    assert set(GEMINI_KEY_ENVS) == {"GEMINI_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"}
    assert insight_list == GEMINI_KEY_ENVS
    assert default_config({}).by_id()["gemini-flash-lite"].key_env_names == list(GEMINI_KEY_ENVS)
    example = load_config(ROOT / "examples" / "wilton.toml").by_id()["gemini-flash-lite"]
    assert example.key_env_names == list(GEMINI_KEY_ENVS)
    readme = (ROOT / "README.md").read_text()
    assert " / ".join(f"`{n}`" for n in GEMINI_KEY_ENVS) in readme
    compose = (ROOT / "docker-compose.yml").read_text()
    for name in GEMINI_KEY_ENVS:
        assert f"{name}: ${{{name}:-}}" in compose, name
