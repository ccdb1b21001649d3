"""The setup wizard against FakeUpstream servers: interactive (in a real pty) and with --yes."""

import os
import re
import select
import stat
import subprocess
import sys
import time
import tomllib

import pytest

from wilton_core.cli import setup as wizard
from wilton_core.config import load_config
from wilton_core.registry.envfile import read_env_file
from wilton_core.registry.registry import StatusTable
from wilton_core.store.sqlite import SqliteStore
from wilton_core.testing.fake_upstream import FakeUpstream

GROQ_KEY = "gsk_wizardtest0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-wizardtest0123456789"
KEY_VARS = ("GROQ_API_KEY", "GEMINI_API_KEY", "GEMINI_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_HOST",
            "WILTON_CONFIG", "WILTON_STORE_URL", "MY_GROQ")


@pytest.fixture(scope="module")
def ollama():
    with FakeUpstream(models=["dolphin-mistral:latest", "qwen2.5-coder:7b", "minicpm-v:latest"],
                      name="ollama") as f:
        yield f


@pytest.fixture(scope="module")
def groq():
    with FakeUpstream(models=["llama-3.1-8b-instant"], api_key=GROQ_KEY, name="groq") as f:
        yield f


@pytest.fixture(scope="module")
def anthropic():
    with FakeUpstream(api_key=ANTHROPIC_KEY, name="anthropic") as f:
        yield f


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for v in KEY_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    return tmp_path


def run(args, capsys):
    code = wizard.main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_non_interactive_full_run(clean_env, ollama, groq, anthropic, capsys, monkeypatch):
    monkeypatch.setenv("MY_GROQ", GROQ_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    code, out = run([
        "--yes", "--provider", "ollama,groq,anthropic", "--ollama-host", ollama.url,
        "--groq-key-env", "MY_GROQ", "--groq-base-url", groq.url + "/v1",
        "--anthropic-base-url", anthropic.url, "--store-url", f"sqlite:///{clean_env / 'w.db'}",
    ], capsys)
    assert code == 0, out
    cfg = load_config(clean_env / "wilton.toml")
    ids = [m.id for m in cfg.models]
    assert ids == ["ollama-chat", "ollama-code", "ollama-vision", "groq-llama-8b", "groq-llama-70b",
                   "claude-sonnet"]
    by = cfg.by_id()
    assert by["ollama-chat"].model == "dolphin-mistral" and by["ollama-chat"].base_url == ollama.url
    assert by["ollama-code"].model == "qwen2.5-coder:7b"        # the pulled coder, not a 14B download
    assert by["ollama-vision"].supports_vision and by["ollama-vision"].model == "minicpm-v"
    assert by["groq-llama-8b"].api_key_env == "MY_GROQ" and not by["groq-llama-8b"].is_local
    assert cfg.routing.intent_defaults == {"chat": "ollama-chat", "code": "ollama-code",
                                           "vision": "ollama-vision", "system": "ollama-chat"}
    text = (clean_env / "wilton.toml").read_text()
    assert GROQ_KEY not in text and ANTHROPIC_KEY not in text and GROQ_KEY not in out
    env_file = clean_env / ".env.wilton"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert read_env_file(env_file) == {"MY_GROQ": GROQ_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    # every model really answered through its wire: groq checked the bearer key, anthropic x-api-key
    assert "6/6 models answered" in out
    assert groq.last_body("llama-3.3-70b-versatile")["max_tokens"] <= 16
    assert anthropic.stats()["by_model"]["claude-sonnet-4-5"]
    store = SqliteStore(clean_env / "w.db")
    try:
        st = StatusTable(store).load()
    finally:
        store.close()
    assert {k: v.status for k, v in st.items()} == dict.fromkeys(ids, "available")
    assert re.search(r"code\s+│\s+ollama-code\s+│\s+groq-llama-70b\s+│\s+claude-sonnet", out)


def test_missing_key_is_refused_and_never_read_from_argv(clean_env, capsys):
    code, out = run(["--yes", "--provider", "groq", "--no-store"], capsys)
    assert code == 2
    assert "set GROQ_API_KEY in the environment" in out
    assert not (clean_env / "wilton.toml").exists() and not (clean_env / ".env.wilton").exists()
    code, out = run(["--yes", "--groq-key", "x"], capsys)
    assert code == 2 and "No such option" in out


def test_failed_model_with_strict_exits_1_but_writes_config(clean_env, groq, capsys, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk_wrongwrongwrongwrong")
    code, out = run(["--yes", "--provider", "groq", "--groq-base-url", groq.url + "/v1", "--no-store",
                     "--strict"], capsys)
    assert code == 1
    assert "auth" in out and "failed their test: groq-llama-8b, groq-llama-70b" in out
    assert "gsk_wrong" not in out
    assert load_config(clean_env / "wilton.toml").by_id()["groq-llama-8b"].api_key_env == "GROQ_API_KEY"


def test_refuses_to_overwrite_and_validates_choices(clean_env, capsys, ollama):
    (clean_env / "wilton.toml").write_text("# mine\n")
    code, out = run(["--yes", "--provider", "ollama", "--ollama-host", ollama.url], capsys)
    assert code == 2 and "pass --force" in out
    assert (clean_env / "wilton.toml").read_text() == "# mine\n"
    code, out = run(["--yes", "--provider", "ollama,bogus", "--force"], capsys)
    assert code == 2 and "unknown provider(s) bogus" in out
    code, out = run(["--yes", "--force", "--no-store"], capsys)     # nothing detected, nothing asked
    assert code == 2 and "nothing configured" in out


def test_unreachable_ollama_is_configured_but_reported(clean_env, capsys):
    code, out = run(["--yes", "--provider", "ollama", "--ollama-host", "http://127.0.0.1:9",
                     "--ollama-chat-model", "llama3.2:3b", "--ollama-code-model", "", "--ollama-vision-model", "",
                     "--no-store", "--test-timeout", "5"], capsys)
    assert code == 0, out
    assert "did not answer" in out and "failed their test: ollama-chat" in out
    cfg = load_config(clean_env / "wilton.toml")
    assert [m.model for m in cfg.models] == ["llama3.2:3b"]


def test_dump_toml_round_trips_what_build_config_makes():
    raw, cfg = wizard.build_config(wizard.WizardAnswers(
        ollama_host="http://h:11434", ollama_models={"chat": 'we"ird', "code": 'we"ird'},
        server_base_url="http://s/v1", server_model="m", api={"gemini": "GEMINI_API_KEY"}))
    assert tomllib.loads(wizard.dump_toml(raw)) == raw
    assert cfg.routing.intent_defaults["code"] == "ollama-chat"     # one model, two intents, one id


# ------------------------------------------------------------------------- interactive, in a pty

class PtyProcess:
    """A child with a pty as its controlling terminal, as a terminal emulator would start it."""

    def __init__(self, args, env, cwd):
        import pty

        self.master, slave = pty.openpty()
        boot = ("import fcntl, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                "from wilton_core.cli.setup import main; sys.exit(main())")
        self.proc = subprocess.Popen([sys.executable, "-c", boot, *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd, start_new_session=True, close_fds=True)
        os.close(slave)
        self.out = ""
        self._pos = 0

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:      # EIO: the child closed the terminal
            return None
        if not data:
            return None
        self.out += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data.decode("utf-8", "replace"))
        return True

    def expect(self, pattern, timeout=30.0):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.out, self._pos)
            if m:
                self._pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self._read(min(left, 0.5)) is None:
                raise AssertionError(f"did not see {pattern!r}; output so far:\n{self.out}")

    def send(self, line):
        os.write(self.master, line.encode() + b"\r")

    def wait(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        while self._read(0.1):
            pass
        os.close(self.master)
        return self.proc.wait(timeout=5)


def test_interactive_wizard_in_a_pty(tmp_path, ollama, groq):
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and not k.startswith("WILTON_")}
    env.update(TERM="dumb", COLUMNS="120", LINES="50", NO_COLOR="1", PYTHONUNBUFFERED="1")
    p = PtyProcess(["--groq-base-url", groq.url + "/v1", "--store-url", f"sqlite:///{tmp_path / 'w.db'}"],
                   env, tmp_path)
    try:
        p.expect(r"RAM: [\d.]+ GB")
        p.expect(r"Configure Ollama\? \[y/N\]")
        p.send("y")
        p.expect(r"Ollama host \[http://127\.0\.0\.1:11434\]")
        p.send(ollama.url)
        p.expect(r"Ollama at .*dolphin-mistral:latest")
        p.expect(r"Ollama model for chat .*\[dolphin-mistral\]")
        p.send("")
        p.expect(r"Ollama model for code .*\[qwen2\.5-coder:7b\]")
        p.send("")
        p.expect(r"Ollama model for vision .*\[minicpm-v\]")
        p.send("minicpm-v:latest")
        p.expect(r"OpenAI-compatible server .*\? \[y/N\]")
        p.send("n")
        p.expect(r"Configure Groq .*\? \[y/N\]")
        p.send("y")
        # click prints the prompt, then getpass turns echo off (flushing typed-ahead input) and
        # writes the final space: type only after that space, as a person would.
        p.expect(r"Groq .*key \(console\.groq\.com/keys\): ")
        p.send(GROQ_KEY)
        p.expect(r"groq configured")
        for label in ("Gemini", "OpenAI", "Anthropic"):
            p.expect(rf"Configure [^\n]*{label}[^\n]*\? \[y/N\]")
            p.send("n")
        p.expect(r"5/5 models answered", timeout=60)
        p.expect(r"wrote wilton\.toml")
        code = p.wait()
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
    assert code == 0, p.out
    assert GROQ_KEY not in p.out                      # typed with echo off, never printed back
    cfg = load_config(tmp_path / "wilton.toml")
    assert [m.id for m in cfg.models] == ["ollama-chat", "ollama-code", "ollama-vision", "groq-llama-8b",
                                          "groq-llama-70b"]
    assert GROQ_KEY not in (tmp_path / "wilton.toml").read_text()
    assert read_env_file(tmp_path / ".env.wilton") == {"GROQ_API_KEY": GROQ_KEY}
    assert stat.S_IMODE((tmp_path / ".env.wilton").stat().st_mode) == 0o600


def test_chat_choice_prefers_the_seeds_chat_models_and_never_an_embedder():
    assert wizard.chat_choice(["nomic-embed-text:latest", "qwen2.5-coder:7b", "tinyllama:latest",
                               "llama3.2:3b"]) == "llama3.2:3b"
    assert wizard.chat_choice(["all-minilm:latest", "dolphin-mistral:latest", "mistral:7b"]) == "dolphin-mistral:latest"
    assert wizard.chat_choice(["bge-m3:latest", "tinyllama:latest", "granite3-dense:2b-instruct"]) == (
        "granite3-dense:2b-instruct")
    assert wizard.chat_choice(["nomic-embed-text", "minicpm-v", "qwen2.5-coder:7b"]) is None


def test_ollama_and_server_without_api_model_say_phi_stays_one(clean_env, capsys):
    # issue 18: the first listed model (an embedder here) became ollama-chat, and "3/5 API models"
    # said nothing although no API model means phi cannot leave 1.0
    with FakeUpstream(models=["nomic-embed-text:latest", "qwen2.5-coder:7b", "llama3.2:3b"], name="ollama") as ol, \
            FakeUpstream(models=["nomic-embed-text", "smollm2"], name="server") as srv:
        code, out = run(["--yes", "--provider", "ollama,server", "--ollama-host", ol.url,
                         "--server-base-url", srv.url + "/v1", "--no-store"], capsys)
    assert code == 0, out
    by = load_config(clean_env / "wilton.toml").by_id()
    assert by["ollama-chat"].model == "llama3.2:3b"
    assert by["local-server"].model == "smollm2"
    section = out.split("3/5 API models")[1].split("4/5")[0]
    assert "phi stays 1.0" in " ".join(section.split())


def test_gemini_config_names_the_one_documented_list(clean_env, capsys, monkeypatch):
    from wilton_core.config import GEMINI_KEY_ENVS

    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-wizardtest")
    code, out = run(["--yes", "--provider", "gemini", "--skip-tests", "--no-store"], capsys)
    assert code == 0, out
    cfg = load_config(clean_env / "wilton.toml")
    assert cfg.by_id()["gemini-flash"].key_env_names == list(GEMINI_KEY_ENVS)
    assert read_env_file(clean_env / ".env.wilton") == {"GOOGLE_API_KEY": "AIza-wizardtest"}
