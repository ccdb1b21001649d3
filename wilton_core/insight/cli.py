"""`wilton-insight`: every hour (or --once), a report on phi, usage and health, written by an LLM
from the stack's own numbers. Thin: flags -> InsightSettings -> InsightService -> library."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from wilton_core.cli.entry import new_app
from wilton_core.errors import ConfigError, StoreError
from wilton_core.insight.archive import StorePromptSource
from wilton_core.insight.backends import default_backend_name, make_backend
from wilton_core.insight.redact import Redactor
from wilton_core.insight.schedule import InsightScheduler
from wilton_core.insight.service import InsightOptions, InsightService
from wilton_core.insight.settings import InsightSettings, load_insight_settings

__all__ = ["app", "build_service", "main"]

log = logging.getLogger("wilton.insight")
app = new_app(help=__doc__)


def build_service(settings: InsightSettings, *, store: Any, environ: Mapping[str, str] | None = None,
                  max_retries: int = 1) -> InsightService:
    env = os.environ if environ is None else environ
    stack = settings.stack_config()
    backend = make_backend(
        settings.insight_model or default_backend_name(env), environ=env,
        router_url=settings.resolved_router_url(), router_api_key=settings.router_api_key_value(),
        openai_model=settings.insight_openai_model,
        gemini_model=settings.insight_gemini_model, max_retries=max_retries,
    )
    key_names = [n for m in stack.models for n in m.key_env_names]
    return InsightService(
        store=store,
        backend=backend,
        reports_dir=settings.reports_dir,
        options=InsightOptions(
            history_hours=settings.insight_history_hours, max_tasks=settings.insight_max_tasks,
            token_budget=settings.insight_token_budget, include_prompts=settings.insight_include_prompts,
            phi_target=stack.routing.phi_target, phi_basis=stack.routing.phi_basis,
            latency_target_s=stack.latency_targets.llm, control_window_s=stack.routing.window_s,
        ),
        redactor=Redactor.from_env(env, key_names),
        prompt_source=StorePromptSource(store) if settings.insight_include_prompts else None,
    )


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"wilton-insight: {message}", err=True)
    return typer.Exit(code)


@app.command()
def run(
    interval: Annotated[float | None, typer.Option("--interval", help="seconds between reports [3600]")] = None,
    first_delay: Annotated[float | None, typer.Option(
        "--first-delay", help="seconds before the first report, so it does not take the local model's only slot "
                              "from the first requests (WILTON_INSIGHT_FIRST_DELAY_S) [300]")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="openai | gemini | local (our router, restricted to local models: never API money); "
                        "default: local unless an API key is set")
    ] = None,
    max_tasks: Annotated[int | None, typer.Option("--max-tasks", help="costliest requests to list [10]")] = None,
    history: Annotated[float | None, typer.Option("--history", help="hours of history per report [24]")] = None,
    once: Annotated[bool, typer.Option("--once", help="write one report and exit")] = False,
    include_prompts: Annotated[bool | None, typer.Option(
        "--include-prompts", help="send captured prompt text of the costliest requests to the model")] = None,
    token_budget: Annotated[int | None, typer.Option("--token-budget", help="tokens per report, prompt + answer [4000]")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="stack config TOML (WILTON_CONFIG)")] = None,
    store_url: Annotated[str | None, typer.Option("--store-url", help="WILTON_STORE_URL")] = None,
    reports_dir: Annotated[Path | None, typer.Option("--reports-dir", help="WILTON_REPORTS_DIR [./reports]")] = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from wilton_core.router.cli import quiet_client_loggers

    quiet_client_loggers()  # httpx's per-request INFO lines are noise in a CLI's output
    try:
        settings = load_insight_settings(
            insight_interval_s=interval, insight_first_delay_s=first_delay, insight_model=model,
            insight_max_tasks=max_tasks,
            insight_history_hours=history, insight_include_prompts=include_prompts,
            insight_token_budget=token_budget, config=config, store_url=store_url, reports_dir=reports_dir,
        )
        settings.stack_config()  # fail fast on a bad config file, before the first hour
        from wilton_core.store import open_store

        store = open_store(settings.resolved_store_url())
        store.migrate()
    except (ConfigError, StoreError) as e:
        raise _fail(str(e)) from None
    service = build_service(settings, store=store)
    try:
        if once:
            try:
                result = service.run_blocking()
            except StoreError as e:
                raise _fail(str(e), 1) from None
            r = result.report
            typer.echo(f"{result.markdown_path} ({r.status}{': ' + r.reason if r.reason else ''})")
            raise typer.Exit(0 if r.status == "ok" else 1)

        def job(run_time: datetime | None) -> None:
            try:
                service.run_blocking(run_time.timestamp() if run_time else None)
            except StoreError as e:
                log.error("insight run failed: %s", e)

        sched = InsightScheduler(job, settings.insight_interval_s, first_delay_s=settings.insight_first_delay_s)
        signal.signal(signal.SIGTERM, lambda *_: sched.stop())
        log.info("insight hook: first report at %s, then every %gs; backend %s, reports in %s",
                 sched.next_run_time, settings.insight_interval_s, service.backend.name, settings.reports_dir)
        try:
            sched.run_forever()
        except KeyboardInterrupt:
            sched.stop()
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="wilton-insight")


if __name__ == "__main__":  # pragma: no cover
    main()
