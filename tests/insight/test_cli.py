"""`wilton-insight` and `wiltonctl insights` end to end: real SQLite store, fake router on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wilton_core.cli.insights import app as insights_app
from wilton_core.errors import ConfigError
from wilton_core.insight.cli import app as insight_app
from wilton_core.insight.settings import load_insight_settings

from .conftest import FakeLLM, openai_completion

KEYS = ("OPENAI_API_KEY", "GEMINI_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "OPENAI_BASE_URL",
        "WILTON_INSIGHT_MODEL", "WILTON_STORE_URL", "WILTON_CONFIG")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k in KEYS:
        monkeypatch.delenv(k, raising=False)
    return {"WILTON_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WILTON_REPORTS_DIR": str(tmp_path / "reports")}


def test_once_local_first_then_list_and_show(env: dict[str, str], fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.reply = lambda s: (200, {"x-wilton-model": "local-small"},
                                openai_completion("## Explanation\nquiet hour", "auto"))
    runner = CliRunner()
    res = runner.invoke(insight_app, ["--once", "--history", "1", "--max-tasks", "3"],
                        env={**env, "WILTON_ROUTER_URL": fake_llm.url})
    assert res.exit_code == 0, res.output
    assert "(ok)" in res.output and fake_llm.seen[0].body["model"] == "local"
    (md,) = (tmp_path / "reports").glob("insight-*.md")
    assert "written by local-small via local" in md.read_text()

    listed = runner.invoke(insights_app, ["list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["status"], row["model"], row["backend"]) == ("ok", "local-small", "local")
    table = runner.invoke(insights_app, ["list"], env=env)
    assert row["id"] in table.output and "local-small" in table.output
    shown = runner.invoke(insights_app, ["show", "latest", "--json"], env=env)
    assert json.loads(shown.output)["analysis"] == "## Explanation\nquiet hour"
    pretty = runner.invoke(insights_app, ["show", row["id"]], env=env)
    assert pretty.exit_code == 0 and "quiet hour" in pretty.output and "Numbers (measured)" in pretty.output
    missing = runner.invoke(insights_app, ["show", "nope"], env=env)
    assert missing.exit_code == 1


def test_once_without_key_is_stats_only_and_exits_1(env: dict[str, str]) -> None:
    res = CliRunner().invoke(insight_app, ["--once", "--model", "openai"], env=env)
    assert res.exit_code == 1
    assert "stats_only: auth: no OpenAI key: set OPENAI_API_KEY" in res.output


def test_bad_flags_are_readable(env: dict[str, str]) -> None:
    res = CliRunner().invoke(insight_app, ["--once", "--token-budget", "10"], env=env)
    assert res.exit_code == 2 and "--token-budget (WILTON_INSIGHT_TOKEN_BUDGET)" in res.output
    with pytest.raises(ConfigError, match="--model"):
        load_insight_settings(insight_model="claude")
    missing = CliRunner().invoke(insights_app, ["list"], env=env)
    assert missing.exit_code == 1 and "no store at" in missing.output  # a read never creates one
    from wilton_core.store import open_store

    open_store(env["WILTON_STORE_URL"]).close()
    empty = CliRunner().invoke(insights_app, ["list"], env=env)
    assert empty.exit_code == 0 and "no insight reports yet" in empty.output


@pytest.mark.e2e
def test_wilton_insight_process_against_a_fake_openai(env: dict[str, str], fake_llm: FakeLLM, tmp_path: Path) -> None:
    """The real process, the real SDK, a fake OpenAI on 127.0.0.1: a report on disk and in the store."""
    import os
    import subprocess
    import sys

    fake_llm.reply = lambda s: (200, {}, openai_completion("## Explanation\nfrom a process"))
    proc_env = {**os.environ, **env, "OPENAI_API_KEY": "sk-e2e-0123456789abcdefghij",
                "OPENAI_BASE_URL": fake_llm.url + "/v1"}
    done = subprocess.run(
        [sys.executable, "-c", "from wilton_core.insight.cli import main; main()", "--once", "--history", "1"],
        env=proc_env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert fake_llm.seen[0].headers["authorization"] == "Bearer sk-e2e-0123456789abcdefghij"
    (js,) = (tmp_path / "reports").glob("insight-*.json")
    body = json.loads(js.read_text())
    assert (body["status"], body["model"], body["backend"]) == ("ok", "gpt-4o-2024-08-06", "openai")
    assert "sk-e2e" not in done.stdout + done.stderr + js.read_text()


LOCAL_AND_API = """
[routing]
probe_models = false

[[models]]
id = "local-small"
provider = "openai"
model = "local-small"
base_url = "{local}/v1"
tier = "selfhost"
is_local = true
capability = "advanced"
context_window = 131072

[[models]]
id = "api-gpt"
provider = "openai"
model = "api-gpt"
base_url = "{api}/v1"
api_key_env = "INSIGHT_TEST_API_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
context_window = 131072
input_cost_per_mtok = 2.5
output_cost_per_mtok = 10.0
"""


@pytest.mark.e2e
def test_model_local_never_reaches_an_api_model_through_a_real_router(env: dict[str, str], tmp_path: Path) -> None:
    """issue 18: `--once --model local` wrote a report "written by api-gpt (local)": model=auto let
    the router pick an API model for the (hard) report prompt; and httpx INFO lines leaked."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from wilton_core.store import open_store
    from wilton_core.store.base import ControlState
    from wilton_core.testing.fake_upstream import FakeUpstream
    from wilton_core.testing.procs import ManagedProcess, free_port

    with FakeUpstream(models=["local-small"], name="local") as local, \
            FakeUpstream(models=["api-gpt"], name="api", api_key="sk-insight-test-key") as api:
        cfg = tmp_path / "w.toml"
        cfg.write_text(LOCAL_AND_API.format(local=local.url, api=api.url))
        store = open_store(env["WILTON_STORE_URL"])
        # threshold 0: every request the router may route freely goes to the API class
        store.put_control_state(ControlState(phi_target=0.0, threshold=0.0, updated_at=time.time() + 3600))
        store.close()
        port = free_port()
        proc_env = {**os.environ, **env, "WILTON_CONFIG": str(cfg), "INSIGHT_TEST_API_KEY": "sk-insight-test-key",
                    "WILTON_ROUTER_URL": f"http://127.0.0.1:{port}"}
        router = ManagedProcess.python_module("wilton_core.router.cli", "--port", str(port), env=proc_env,
                                              log=tmp_path / "router.log").start(
            f"http://127.0.0.1:{port}/readyz", timeout=60)
        try:
            auto = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30, json={
                "model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
            assert auto.headers["x-wilton-local"] == "false"  # the control: auto goes to the API here
            api_before = api.stats()["by_model"].get("api-gpt", 0)
            done = subprocess.run(
                [sys.executable, "-c", "from wilton_core.insight.cli import main; main()", "--once",
                 "--model", "local", "--history", "1"],
                env=proc_env, capture_output=True, text=True, timeout=120, check=False)
        finally:
            router.stop()
        assert done.returncode == 0, done.stdout + done.stderr
        assert api.stats()["by_model"].get("api-gpt", 0) == api_before  # not one API call
        (js,) = (tmp_path / "reports").glob("insight-*.json")
        body = json.loads(js.read_text())
        assert (body["status"], body["model"], body["backend"]) == ("ok", "local-small", "local")
        assert "HTTP Request:" not in done.stdout + done.stderr


def test_the_first_report_waits_then_the_hourly_rhythm_follows() -> None:
    """issue 18: at start the first report took the only llama.cpp slot from the user's first request."""
    from datetime import UTC, datetime, timedelta

    from wilton_core.insight.schedule import InsightScheduler

    start = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    ran: list[datetime] = []
    sched = InsightScheduler(lambda t: ran.append(t), 3600, clock=lambda: start, first_delay_s=300)
    assert sched.advance_to(start) is None and sched.advance_to(start + timedelta(seconds=299)) is None
    assert sched.advance_to(start + timedelta(seconds=300)) == start + timedelta(seconds=300)
    assert sched.next_run_time == start + timedelta(seconds=3900)
    assert ran == [start + timedelta(seconds=300)]
    with pytest.raises(ValueError, match="first_delay_s"):
        InsightScheduler(lambda t: None, 3600, first_delay_s=-1)
    assert load_insight_settings().insight_first_delay_s == 300  # the default delays
    with pytest.raises(ConfigError, match="--first-delay"):
        load_insight_settings(insight_first_delay_s=-5)
