"""`wiltonctl hpc`: run a JSON file of LLM tasks through the router and show where they went.

    wiltonctl hpc schedule-task examples/llm_demo.json [--concurrency 4] [--no-wait]
    wiltonctl hpc resume BATCH
    wiltonctl hpc status [BATCH]
    wiltonctl hpc results BATCH [--json]
    wiltonctl hpc cancel BATCH / wiltonctl hpc delete BATCH

Tasks are validated first (nothing runs when one is wrong: exit 2), then stored, then run, so
a crash or a restart loses nothing. Exit 1 when the router cannot be reached (tasks kept).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wilton_core.errors import WiltonError

if TYPE_CHECKING:
    from rich.console import Console

    from wilton_core.hpc.repo import TaskRepo
    from wilton_core.hpc.summary import BatchSummary
    from wilton_core.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="Batches of LLM tasks run through the router (schedule, resume, status, results).",
                  no_args_is_help=True, add_completion=False)

StoreOpt = Annotated[str | None, typer.Option("--store-url", help="WILTON_STORE_URL (default sqlite under ./data)")]
# `-c` is `--config` everywhere in wiltonctl: concurrency has only its long name
ConcurrencyOpt = Annotated[int | None, typer.Option("--concurrency", min=1, max=64,
                                                    help="parallel requests (default: the batch's own)")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="no progress bar (plain output for logs)")]
RouterOpt = Annotated[str | None, typer.Option("--router-url", help="WILTON_ROUTER_URL (default http://127.0.0.1:8080)")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"wiltonctl hpc: {message}", err=True)
    return typer.Exit(code)


def _settings(store_url: str | None, router_url: str | None) -> Settings:
    from wilton_core.cli.storeopt import check_store_flag
    from wilton_core.settings import load_settings

    try:
        check_store_flag(store_url)  # a bad flag is the flag's fault, not WILTON_STORE_URL's
        return load_settings(store_url=store_url, router_url=router_url)
    except WiltonError as e:
        raise _fail(str(e), 2) from None


def _open_repo(settings: Settings, *, create: bool = False) -> TaskRepo:
    """Only `schedule-task` creates the store; reading, resuming or cancelling from the wrong
    directory says where it looked (exit 1) instead of creating an empty ./data/wilton.db."""
    from wilton_core.cli.storeopt import open_existing_store
    from wilton_core.hpc.repo import TaskRepo
    from wilton_core.store import StoreNotFoundError, open_store

    url = settings.resolved_store_url()
    try:
        return TaskRepo(open_store(url) if create else open_existing_store(url))
    except StoreNotFoundError as e:
        raise _fail(f"no batches: {e}", 1) from None
    except WiltonError as e:
        raise _fail(f"store unavailable: {e}", 3) from None


def _console() -> Console:
    from wilton_core.cli.console import make_console

    return make_console(highlight=False, soft_wrap=True, markup=False)


def _run_dir(settings: Settings) -> Path:
    return settings.run_dir


def _spawn(batch_id: str, concurrency: int, settings: Settings) -> Path:
    log = _run_dir(settings) / f"hpc-{batch_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WILTON_STORE_URL": settings.resolved_store_url()}
    with open(log, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "wilton_core.hpc.worker", batch_id, "--concurrency", str(concurrency),
             "--router-url", settings.resolved_router_url()],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return log


def _run_with_progress(repo: TaskRepo, batch_id: str, settings: Settings, concurrency: int,
                       console: Console, show_progress: bool) -> str:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from wilton_core.hpc.runner import BatchRunner

    info = repo.batch(batch_id)
    todo = info.unfinished if info else 0
    runner = BatchRunner(repo, settings.resolved_router_url(), concurrency=concurrency,
                         api_key=settings.router_api_key_value())
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("local {task.fields[local]} · api {task.fields[api]} · errors {task.fields[err]}"),
                  TimeElapsedColumn(), console=console, disable=not show_progress, transient=False) as bar:
        counts = {"local": 0, "api": 0, "err": 0}
        tid = bar.add_task(f"batch {batch_id}", total=todo, local=0, api=0, err=0)

        def on_result(_task: Any, result: Any) -> None:
            key = "err" if result.status != "ok" else ("local" if result.is_local else "api")
            counts[key] += 1
            bar.update(tid, advance=1, local=counts["local"], api=counts["api"], err=counts["err"])

        outcome = asyncio.run(runner.run(batch_id, on_result))
    return outcome.status


def _render_summary(console: Console, summary: BatchSummary, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col, just in (("tier", "left"), ("model", "left"), ("local", "left"), ("count", "right"),
                      ("share", "right"), ("p50 s", "right"), ("p95 s", "right"), ("tokens in/out", "right"),
                      ("cost $", "right")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for g in summary.groups:
        table.add_row(g.tier, g.model, "yes" if g.is_local else "no", str(g.count), f"{g.share:.0%}",
                      _num(g.latency_p50_s), _num(g.latency_p95_s), f"{g.tokens_in}/{g.tokens_out}",
                      f"{g.cost_usd:.6f}")
    console.print(table)
    local = sum(g.count for g in summary.groups if g.is_local)
    phi = "n/a (nothing answered)" if summary.phi is None else f"{summary.phi:.2f} ({local} local / {summary.ok} answered)"
    console.print(f"phi over the batch: {phi}; cost ${summary.cost_usd:.6f}; tokens {summary.tokens}")
    if summary.errors:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(summary.error_kinds.items()))
        console.print(f"errors: {summary.errors} ({kinds}) — see `wiltonctl hpc results BATCH`")
    if summary.pending:
        console.print(f"unfinished: {summary.pending} task(s) still pending")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _summary(repo: TaskRepo, batch_id: str) -> BatchSummary:
    from wilton_core.hpc.summary import summarize

    return summarize(t.result for t in repo.tasks(batch_id))


def _samples(console: Console, repo: TaskRepo, batch_id: str) -> None:
    seen: set[str] = set()
    for t in repo.tasks(batch_id):
        r = t.result
        if r.status == "ok" and r.model_id and r.model_id not in seen:
            seen.add(r.model_id)
            text = " ".join((r.text or "").split())
            console.print(f"  sample from {r.model_id} (task {t.idx}): {text[:100]}{'…' if len(text) > 100 else ''}")


def _finish(console: Console, repo: TaskRepo, batch_id: str, status: str) -> None:
    info = repo.batch(batch_id)
    name = info.name if info else batch_id
    _render_summary(console, _summary(repo, batch_id), f"batch {batch_id} ({name}): {status}")
    _samples(console, repo, batch_id)


def _orphans(repo: TaskRepo, exclude: str, now: float) -> list[str]:
    return [b.id for b in repo.batches(unfinished_only=True, limit=100)
            if b.id != exclude and b.unfinished and (b.lease_owner is None or b.lease_until < now)]


@app.command("schedule-task")
def schedule_task(
    file: Annotated[Path | None, typer.Argument(
        help="task file (JSON): {name, concurrency?, tasks: [...]}", show_default=False)] = None,
    file_opt: Annotated[Path | None, typer.Option("--file", "-f", hidden=True,
                                                  help="deprecated: give FILE as an argument")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=64,
                                                    help="parallel requests (default: the file's, else 4)")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="store, run in the background, print the batch id")] = False,
    no_progress: NoProgressOpt = False,
    store_url: StoreOpt = None,
    router_url: RouterOpt = None,
) -> None:
    """Validate a task file, store its tasks, run them through the router, show the split."""
    from wilton_core.hpc.model import TaskFileError, load_task_file
    from wilton_core.hpc.runner import BatchBusy, RouterUnreachable

    if file is not None and file_opt is not None:
        raise _fail("give the task file once (FILE; --file is its old spelling)", 2)
    if file_opt is not None:
        typer.echo("wiltonctl hpc: --file is deprecated; give the task file as an argument", err=True)
    file = file or file_opt
    if file is None:
        raise _fail("missing the task FILE, e.g. `wiltonctl hpc schedule-task examples/llm_demo.json`", 2)
    try:
        spec = load_task_file(file)
    except TaskFileError as e:
        raise _fail(str(e), 2) from None
    settings = _settings(store_url, router_url)
    repo = _open_repo(settings, create=True)
    try:
        conc = concurrency or spec.concurrency or 4
        bid = repo.create_batch(spec, now=time.time(), concurrency=conc, source=str(file))
        if no_wait:
            log = _spawn(bid, conc, settings)
            typer.echo(bid)
            typer.echo(f"running in the background (log {log}); `wiltonctl hpc status {bid}`", err=True)
            return
        console = _console()
        console.print(f"batch {bid}: {len(spec.tasks)} tasks from {file}, concurrency {conc}, "
                      f"router {settings.resolved_router_url()}")
        try:
            status = _run_with_progress(repo, bid, settings, conc, console, not no_progress)
            _finish(console, repo, bid, status)
            for old in _orphans(repo, bid, time.time()):
                console.print(f"resuming unfinished batch {old}")
                try:
                    old_status = _run_with_progress(repo, old, settings, conc, console, not no_progress)
                except BatchBusy:
                    continue
                console.print(f"batch {old}: {old_status}")
        except RouterUnreachable as e:
            raise _fail(f"{e}\n  batch {bid} is stored; run `wiltonctl hpc resume {bid}` once the router is up", 1) from None
    finally:
        repo.store.close()


@app.command("resume")
def resume(
    batch_id: Annotated[str, typer.Argument(help="batch id (see `wiltonctl hpc status`)")],
    concurrency: ConcurrencyOpt = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="run in the background")] = False,
    no_progress: NoProgressOpt = False,
    store_url: StoreOpt = None,
    router_url: RouterOpt = None,
) -> None:
    """Run a stored batch's unfinished tasks (after a crash, a restart, or an unreachable router)."""
    from wilton_core.hpc.runner import BatchBusy, RouterUnreachable

    settings = _settings(store_url, router_url)
    repo = _open_repo(settings)
    try:
        info = repo.batch(batch_id)
        if info is None:
            raise _fail(f"no batch {batch_id!r} in {repo.store.url}", 2)
        conc = concurrency or info.concurrency
        console = _console()
        if info.status == "done":
            console.print(f"batch {batch_id} is already done")
            _finish(console, repo, batch_id, "done")
            return
        if no_wait:
            typer.echo(batch_id)
            typer.echo(f"running in the background (log {_spawn(batch_id, conc, settings)})", err=True)
            return
        try:
            status = _run_with_progress(repo, batch_id, settings, conc, console, not no_progress)
        except BatchBusy as e:
            raise _fail(str(e), 1) from None
        except RouterUnreachable as e:
            raise _fail(str(e), 1) from None
        _finish(console, repo, batch_id, status)
    finally:
        repo.store.close()


@app.command("status")
def status(
    batch_id: Annotated[str | None, typer.Argument(help="one batch (default: the 20 latest)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    store_url: StoreOpt = None,
) -> None:
    """Batches with their task counts (pending, running, ok, error)."""
    from rich.table import Table

    repo = _open_repo(_settings(store_url, None))
    try:
        infos = repo.batches(ids=[batch_id]) if batch_id else repo.batches()
        if batch_id and not infos:
            raise _fail(f"no batch {batch_id!r}", 2)
        now = time.time()
        if as_json:
            typer.echo(json.dumps([{"id": b.id, "name": b.name, "status": b.status, "created_at": b.created_at,
                                    "finished_at": b.finished_at, "counts": b.counts, "total": b.total,
                                    "runner_alive": bool(b.lease_owner and b.lease_until >= now)}
                                   for b in infos], indent=2))
            return
        table = Table()
        for col in ("batch", "name", "status", "tasks", "ok", "error", "pending", "running", "created"):
            table.add_column(col)
        for b in infos:
            st = b.status
            if st == "running" and b.lease_until < now:
                st = "interrupted (resume it)"
            table.add_row(b.id, b.name, st, str(b.total), str(b.counts.get("ok", 0)), str(b.counts.get("error", 0)),
                          str(b.counts.get("pending", 0)), str(b.counts.get("running", 0)),
                          time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.created_at)))
        console = _console()
        console.print(table if infos else "no batches yet: `wiltonctl hpc schedule-task examples/llm_demo.json`")
        if batch_id and infos:
            _render_summary(console, _summary(repo, batch_id), "split so far")
    finally:
        repo.store.close()


@app.command("results")
def results(
    batch_id: Annotated[str, typer.Argument(help="batch id (see `wiltonctl hpc status`)")],
    as_json: Annotated[bool, typer.Option("--json", help="every task with its full answer, as JSON")] = False,
    store_url: StoreOpt = None,
) -> None:
    """Each task's outcome: model, tier, latency, tokens, cost, and the answer (or the error)."""
    from rich.table import Table

    repo = _open_repo(_settings(store_url, None))
    try:
        info = repo.batch(batch_id)
        if info is None:
            raise _fail(f"no batch {batch_id!r}", 2)
        tasks = repo.tasks(batch_id)
        summary = _summary(repo, batch_id)
        if as_json:
            typer.echo(json.dumps({"batch": batch_id, "name": info.name, "status": info.status,
                                   "summary": summary.as_json(), "tasks": [t.as_json() for t in tasks]},
                                  indent=2, ensure_ascii=False))
            return
        table = Table(title=f"batch {batch_id} ({info.name}): {info.status}", title_justify="left")
        for col in ("#", "prio", "intent", "status", "model", "tier", "latency s", "tok in/out", "cost $"):
            table.add_column(col, no_wrap=True)
        # one line per task: the whole answer is in --json
        table.add_column("answer / error", min_width=20)
        for t in tasks:
            r = t.result
            raw = r.text if r.status == "ok" else r.error
            text = " ".join((raw or "").split())
            # an answer is a one-line preview (the whole one is in --json); an error is the reason, whole
            limit = 80 if r.status == "ok" else 500
            text = text if len(text) <= limit else text[:limit - 1] + "…"
            table.add_row(str(t.idx), str(t.priority), t.intent or "-", r.status, r.model_id or "-", r.tier or "-",
                          f"{r.latency_s:.3f}" if r.status in ("ok", "error") else "-",
                          f"{r.tokens_in}/{r.tokens_out}", f"{r.cost_usd:.6f}", text)
        console = _console()
        console.print(table)
        _render_summary(console, summary, "split")
    finally:
        repo.store.close()


ForceOpt = Annotated[bool, typer.Option("--force", help="even while a live runner holds the batch")]


def _stoppable(repo: TaskRepo, batch_id: str, force: bool, verb: str) -> None:
    info = repo.batch(batch_id)
    if info is None:
        raise _fail(f"no batch {batch_id!r} in {repo.store.url}", 2)
    if info.lease_owner and info.lease_until >= time.time() and not force:
        raise _fail(f"batch {batch_id} is being run right now (runner {info.lease_owner}); stop it first, "
                    f"or {verb} it anyway with --force", 1)


@app.command("cancel")
def cancel(
    batch_id: Annotated[str, typer.Argument(help="batch id (see `wiltonctl hpc status`)")],
    force: ForceOpt = False,
    store_url: StoreOpt = None,
) -> None:
    """Give up on a batch's unfinished tasks (e.g. stored against a router that is gone): they become
    errors "cancelled", the batch is done; answers already stored are kept."""
    repo = _open_repo(_settings(store_url, None))
    try:
        _stoppable(repo, batch_id, force, "cancel")
        n = repo.cancel(batch_id, now=time.time(), reason="wiltonctl hpc cancel")
    finally:
        repo.store.close()
    typer.echo(f"batch {batch_id}: {n} unfinished task(s) cancelled; the batch is done "
               f"(`wiltonctl hpc results {batch_id}`, or `wiltonctl hpc delete {batch_id}`)")


@app.command("delete")
def delete(
    batch_id: Annotated[str, typer.Argument(help="batch id (see `wiltonctl hpc status`)")],
    force: ForceOpt = False,
    store_url: StoreOpt = None,
) -> None:
    """Remove a batch, its tasks and their results from the store."""
    repo = _open_repo(_settings(store_url, None))
    try:
        _stoppable(repo, batch_id, force, "delete")
        n = repo.delete(batch_id)
    finally:
        repo.store.close()
    typer.echo(f"batch {batch_id} deleted ({n} task(s))")
