"""Whole runs against the real SQLite store and a fake upstream on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from wilton_core.insight.archive import LAST_RUN_KEY, StorePromptSource, get_report, list_reports
from wilton_core.insight.backends import GeminiBackend, OpenAIBackend, RouterBackend
from wilton_core.insight.redact import Redactor
from wilton_core.insight.schedule import JOB_ID, InsightScheduler
from wilton_core.insight.service import InsightOptions, InsightService
from wilton_core.store.sqlite import SqliteStore
from wilton_core.types import LedgerRecord

from .conftest import FakeLLM, Seen, gemini_response, openai_completion

NOW = 1_700_003_600.0
SECRET = "sk-planted-SECRET-0123456789abcdefXYZ"
PROMPT = "PLANTED-PROMPT: summarise the board minutes of Acme"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "wilton.db")
    s.migrate()
    records = []
    for i in range(120):  # two hours, one request a minute; every 4th goes to the API
        api = i % 4 == 3
        records.append(LedgerRecord(
            ts=NOW - 7200 + i * 60, request_id=f"req-{i:03d}", model_id="gpt-4o" if api else "local-small",
            tier="frontier" if api else "selfhost", is_local=not api, provider="openai" if api else "llamacpp",
            latency_s=2.5 if api else 0.3, tokens_in=100, tokens_out=50 + i, cost_usd=0.001 * i if api else 0.0,
        ))
    s.insert_ledger(records)
    for k in range(24):
        s.append_control_history(NOW - 7200 + k * 300, 0.75, 0.75 if k < 12 else 0.70, 0.5 + k / 100, None)
    s.execute("INSERT INTO request_prompts (request_id, ts, prompt) VALUES (?, ?, ?)",
              ("req-119", NOW - 60, f"{PROMPT} with key {SECRET}"))
    yield s
    s.close()


def service(store: SqliteStore, backend: Any, tmp_path: Path, **opts: Any) -> InsightService:
    return InsightService(
        store=store, backend=backend, reports_dir=tmp_path / "reports",
        options=InsightOptions(history_hours=2, max_tasks=3, **opts),
        redactor=Redactor.from_env({"OPENAI_API_KEY": SECRET}),
        prompt_source=StorePromptSource(store), clock=lambda: NOW,
    )


def last_run(store: SqliteStore) -> dict[str, Any]:
    raw = store.kv_get(LAST_RUN_KEY)
    assert raw is not None
    doc: dict[str, Any] = json.loads(raw)
    return doc


async def test_openai_run_writes_files_store_row_and_last_run(
    store: SqliteStore, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.reply = lambda s: (200, {}, openai_completion("## Explanation\nphi drifted to 0.70.\n"
                                                           "## Recommendations\nLower the threshold."))
    svc = service(store, OpenAIBackend(api_key=SECRET, base_url=fake_llm.url + "/v1", max_retries=0), tmp_path)
    res = await svc.run_once()
    await svc.aclose()
    r = res.report
    assert (r.status, r.reason, r.model, r.backend) == ("ok", None, "gpt-4o-2024-08-06", "openai")
    assert res.markdown_path == tmp_path / "reports" / "insight-20231114T231320Z.md"
    md = res.markdown_path.read_text()
    assert "## Numbers (measured)" in md and "written by gpt-4o-2024-08-06 via openai" in md
    assert md.index("## Numbers") < md.index("## Analysis") < md.index("Lower the threshold")
    body = json.loads(res.json_path.read_text())
    assert body["stats"]["totals"]["requests"] == 120
    assert body["stats"]["phi"]["off_target_s"] == 3600.0 and body["stats"]["phi"]["source"] == "control_history"
    assert [c["request_id"] for c in body["stats"]["costliest"]] == ["req-119", "req-115", "req-111"]
    assert body["analysis"].startswith("## Explanation")
    sent = fake_llm.seen[0].body["messages"][1]["content"]
    assert '"off_target_s":3600.0' in sent and "req-119" in sent
    assert [s.id for s in list_reports(store)] == [r.id]
    got = get_report(store, "latest")
    assert got is not None and got[0].analysis == r.analysis and got[1] == md
    doc = last_run(store)
    assert doc == {"ts": NOW, "ok": True, "runs_ok": 1, "runs_failed": 0, "last_success_ts": NOW, "reason": None}


async def test_gemini_and_router_runs_name_their_model(store: SqliteStore, fake_llm: FakeLLM, tmp_path: Path) -> None:
    def reply(s: Seen) -> tuple[int, dict[str, str], dict[str, Any]]:
        if s.path.endswith(":generateContent"):
            return 200, {}, gemini_response("Gemini analysis")
        return 200, {"x-wilton-model": "local-small"}, openai_completion("Local analysis", "auto")

    fake_llm.reply = reply
    g = await service(store, GeminiBackend(api_key="AIza-key-for-tests", base_url=fake_llm.url), tmp_path).run_once()
    loc = await service(store, RouterBackend(base_url=fake_llm.url), tmp_path).run_once(NOW + 1)
    assert (g.report.model, g.report.analysis) == ("gemini-2.5-flash-001", "Gemini analysis")
    assert (loc.report.model, loc.report.backend) == ("local-small", "local")
    assert last_run(store)["runs_ok"] == 2


@pytest.mark.parametrize("failure", ["no_key", "rate_limited", "refused"])
async def test_failures_give_a_stats_only_report_that_says_why(
    store: SqliteStore, fake_llm: FakeLLM, refused_url: str, tmp_path: Path, failure: str
) -> None:
    fake_llm.reply = lambda s: (200, {}, openai_completion("fine"))
    ok = service(store, OpenAIBackend(api_key="k" * 20, base_url=fake_llm.url + "/v1", max_retries=0), tmp_path)
    await ok.run_once(NOW - 3600)
    await ok.aclose()

    fake_llm.reply = lambda s: (429, {"retry-after": "30"}, {"error": {"message": "quota exceeded"}})
    backend = {
        "no_key": OpenAIBackend(api_key=None),
        "rate_limited": OpenAIBackend(api_key="k" * 20, base_url=fake_llm.url + "/v1", max_retries=0),
        "refused": OpenAIBackend(api_key="k" * 20, base_url=refused_url + "/v1", max_retries=0, timeout_s=5),
    }[failure]
    svc = service(store, backend, tmp_path)
    first = await svc.run_once()
    second = await svc.run_once(NOW + 60)
    await svc.aclose()
    expected = {"no_key": "auth: no OpenAI key: set OPENAI_API_KEY",
                "rate_limited": "rate_limited: openai gpt-4o: HTTP 429: quota exceeded (retry after 30 s)",
                "refused": "unavailable: OpenAI unreachable"}[failure]
    for res in (first, second):
        assert res.report.status == "stats_only" and res.report.analysis is None
        assert res.report.reason is not None and res.report.reason.startswith(expected)
        md = res.markdown_path.read_text()
        assert "**Statistics only**" in md and expected in md and "## Numbers (measured)" in md
        assert json.loads(res.json_path.read_text())["stats"]["totals"]["requests"] > 0
    doc = last_run(store)
    assert (doc["ok"], doc["runs_ok"], doc["runs_failed"]) == (False, 1, 2)
    assert doc["last_success_ts"] == NOW - 3600 and doc["reason"].startswith(expected)
    assert [s.status for s in list_reports(store)] == ["stats_only", "stats_only", "ok"]


@pytest.mark.parametrize("include_prompts", [False, True])
async def test_secrets_and_raw_prompts_stay_out(
    store: SqliteStore, fake_llm: FakeLLM, tmp_path: Path, include_prompts: bool
) -> None:
    # A hostile upstream that echoes everything it was sent, plus the key it was given.
    def echo(s: Seen) -> tuple[int, dict[str, str], dict[str, Any]]:
        text = s.body["messages"][1]["content"] + " key=" + s.headers["authorization"]
        return 200, {}, openai_completion(text)

    fake_llm.reply = echo
    svc = service(store, OpenAIBackend(api_key=SECRET, base_url=fake_llm.url + "/v1", max_retries=0), tmp_path,
                  include_prompts=include_prompts)
    res = await svc.run_once()
    await svc.aclose()
    sent = fake_llm.seen[0].body["messages"][1]["content"]
    (row,) = store.query("SELECT markdown, body FROM insight_reports")
    outputs = [res.markdown_path.read_text(), res.json_path.read_text(), row[0], row[1], sent,
               store.kv_get(LAST_RUN_KEY) or ""]
    for text in outputs:
        assert SECRET not in text
        assert "sk-planted" not in text
        assert (PROMPT in text) == (include_prompts and text is not outputs[-1])
    assert res.report.include_prompts is include_prompts
    assert "[REDACTED]" in res.markdown_path.read_text()


async def test_token_budget_trims_the_prompt_and_caps_the_answer(
    store: SqliteStore, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.reply = lambda s: (200, {}, openai_completion("short"))
    svc = service(store, OpenAIBackend(api_key="k" * 20, base_url=fake_llm.url + "/v1", max_retries=0), tmp_path,
                  token_budget=1200)
    res = await svc.run_once()
    await svc.aclose()
    body = fake_llm.seen[0].body
    assert body["max_tokens"] == 300
    assert len(body["messages"][0]["content"] + body["messages"][1]["content"]) / 3 <= 900
    assert res.report.trimmed and "phi trajectory reduced to 12 points" in res.report.trimmed
    assert "Left out to fit the token budget" in body["messages"][1]["content"]


def test_scheduled_runs_in_simulated_time(store: SqliteStore, fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.reply = lambda s: (200, {"x-wilton-model": "local-small"}, openai_completion("ok", "auto"))
    svc = service(store, RouterBackend(base_url=fake_llm.url), tmp_path)
    start = datetime.fromtimestamp(NOW, UTC)
    ran: list[float] = []

    def job(run_time: datetime | None) -> None:
        assert run_time is not None
        ran.append(svc.run_blocking(run_time.timestamp()).report.created_at)

    sched = InsightScheduler(job, 3600, clock=lambda: start)
    job_cfg = sched.scheduler.get_job(JOB_ID)
    assert (job_cfg.max_instances, job_cfg.coalesce) == (1, True)
    assert sched.advance_to(start) == start                                  # next_run_time = now
    assert sched.advance_to(start + timedelta(minutes=59)) is None
    assert sched.advance_to(start + timedelta(hours=1)) == start + timedelta(hours=1)
    # the process was asleep for 4 hours: the 3 missed runs coalesce into one
    assert len(sched.due_runs(start + timedelta(hours=4, minutes=5))) == 3
    assert sched.advance_to(start + timedelta(hours=4, minutes=5)) == start + timedelta(hours=4)
    assert sched.next_run_time == start + timedelta(hours=5)
    assert ran == [NOW, NOW + 3600, NOW + 4 * 3600]
    assert last_run(store)["runs_ok"] == 3
    assert sorted(p.name for p in (tmp_path / "reports").glob("*.md")) == [
        "insight-20231114T231320Z.md", "insight-20231115T001320Z.md", "insight-20231115T031320Z.md"]


def test_real_apscheduler_runs_the_job_at_start(store: SqliteStore, fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.reply = lambda s: (200, {}, openai_completion("ok"))
    svc = service(store, RouterBackend(base_url=fake_llm.url), tmp_path)
    done = threading.Event()

    def job(run_time: datetime | None) -> None:
        assert run_time is None   # the real scheduler lets the service read its own clock
        svc.run_blocking()
        done.set()

    sched = InsightScheduler(job, 3600, scheduler=BackgroundScheduler(timezone=UTC))
    sched.run_forever()
    try:
        assert done.wait(10)
    finally:
        sched.stop()
    assert last_run(store)["runs_ok"] == 1


async def test_a_budget_too_small_for_the_numbers_is_a_stats_only_run(
    store: SqliteStore, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    svc = service(store, OpenAIBackend(api_key="k" * 20, base_url=fake_llm.url + "/v1", max_retries=0), tmp_path,
                  token_budget=512)
    res = await svc.run_once()
    assert res.report.status == "stats_only" and "token budget 512 is too small" in (res.report.reason or "")
    assert fake_llm.seen == [] and last_run(store)["runs_failed"] == 1
