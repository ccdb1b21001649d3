"""`wiltonctl models list|test` end to end: real config file, real store, FakeUpstream over HTTP."""

import pytest
from typer.testing import CliRunner

from wilton_core.cli.models import app
from wilton_core.registry.envfile import write_env_file
from wilton_core.testing.fake_upstream import FakeUpstream

KEY = "gsk_modelscli0123456789abcdef"


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(models=["llama3.2:3b"], name="ollama") as f:
        yield f


@pytest.fixture(scope="module")
def groq():
    with FakeUpstream(api_key=KEY, name="groq") as f:
        yield f


@pytest.fixture
def setup_files(tmp_path, fake, groq, monkeypatch):
    for v in ("GROQ_API_KEY", "WILTON_CONFIG", "WILTON_STORE_URL"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    cfg = tmp_path / "wilton.toml"
    cfg.write_text(f'''
[[models]]
id = "ollama-small"
provider = "ollama"
model = "llama3.2:3b"
base_url = "{fake.url}"
tier = "selfhost"
is_local = true
capability = "basic"

[[models]]
id = "groq-8b"
provider = "openai"
model = "llama-3.1-8b-instant"
base_url = "{groq.url}/v1"
api_key_env = "GROQ_API_KEY"
tier = "edge"
is_local = false
input_cost_per_mtok = 0.05
output_cost_per_mtok = 0.08
''')
    env = tmp_path / ".env.wilton"
    common = ["--config", str(cfg), "--store-url", f"sqlite:///{tmp_path / 'w.db'}", "--env-file", str(env)]
    return common, env


def invoke(args):
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_list_before_any_test_shows_key_state(setup_files):
    common, _ = setup_files
    r = invoke(["list", *common])
    assert r.exit_code == 0, r.output
    assert "ollama-small" in r.output and "untested" in r.output and "no key" in r.output
    assert "$0.05/$0.08 per Mtok" in r.output


def test_test_all_persists_and_list_reads_back(setup_files, fake):
    common, env = setup_files
    r = invoke(["test", "--all", *common])
    assert r.exit_code == 0, r.output                   # groq has no key: not tested, not a failure
    assert "1/1 models answered" in r.output
    write_env_file(env, {"GROQ_API_KEY": KEY})
    r = invoke(["test", "groq-8b", *common])
    assert r.exit_code == 0, r.output
    r = invoke(["list", *common])
    lines = {ln.split("│")[1].strip(): ln for ln in r.output.splitlines() if ln.count("│") > 5}
    assert "available" in lines["ollama-small"] and " ms" in lines["ollama-small"]
    assert "available" in lines["groq-8b"] and "yes" in lines["groq-8b"]
    assert KEY not in r.output


def test_failures_exit_1_with_readable_error(setup_files, fake):
    common, env = setup_files
    write_env_file(env, {"GROQ_API_KEY": "gsk_notthekey000000000"})
    r = invoke(["test", "groq-8b", *common])
    assert r.exit_code == 1
    assert "failed" in r.output and "auth" in r.output and "gsk_notthekey" not in r.output
    fake.script("llama3.2:3b", status=503, times=1)
    r = invoke(["test", "ollama-small", *common])
    assert r.exit_code == 1 and "unavailable" in r.output
    r = invoke(["list", *common])
    assert r.output.count("failed") == 2


def test_usage_errors_exit_2(setup_files):
    common, _ = setup_files
    assert invoke(["test", *common]).exit_code == 2
    assert invoke(["test", "x", "--all", *common]).exit_code == 2
    r = invoke(["test", "nope", *common])
    assert r.exit_code == 2 and "configured: ollama-small, groq-8b" in r.output
