"""`wiltonctl models list|test`: the configured models, their keys, and their last test.

Exit codes: 0 when every tested model answered (a rate-limited model answered: it is busy, not
broken), 1 when one failed or could not be tested, 2 for usage errors (unknown id, bad config).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wilton_core.config import StackConfig, load_config
from wilton_core.errors import WiltonError
from wilton_core.registry.envfile import DEFAULT_ENV_FILE, merged_environ
from wilton_core.registry.registry import ModelRegistry, ModelRow, ProbeResult

if TYPE_CHECKING:
    from rich.console import Console

    from wilton_core.store.base import Store

__all__ = ["app", "open_status_store", "print_results", "render_rows", "run_tests"]

app = typer.Typer(help="List and test the configured models.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="config TOML (default: $WILTON_CONFIG, else the embedded defaults)")]
StoreOpt = Annotated[str | None, typer.Option(
    "--store-url", help="store for test results (default: $WILTON_STORE_URL or the data dir)")]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="keep results in memory only")]
EnvFileOpt = Annotated[Path, typer.Option(
    "--env-file", help="keys file read on top of the environment (if it exists)")]

_STATUS_STYLE = {"available": "green", "rate_limited": "yellow", "failed": "red", "untested": "dim"}


def _console() -> Console:
    from wilton_core.cli.console import make_console

    return make_console(highlight=False)


def load_stack_config(path: Path | None) -> StackConfig:
    if path is not None:
        return load_config(path)
    from wilton_core.settings import load_settings

    return load_settings().stack_config()


def open_status_store(url: str | None, *, disabled: bool = False, create: bool = True) -> Store | None:
    """The shared store, migrated; None (with a note) when it cannot be opened.

    `create=False` (listing) never creates a store: with none yet, models show as untested.
    A bad `--store-url` is a usage error (ConfigError naming the flag), not a warning.
    """
    if disabled:
        return None
    from wilton_core.cli.storeopt import check_store_flag, open_existing_store
    from wilton_core.store import StoreNotFoundError, open_store

    check_store_flag(url)
    try:
        from wilton_core.settings import load_settings

        resolved = url or load_settings().resolved_store_url()
        return open_store(resolved) if create else open_existing_store(resolved)
    except StoreNotFoundError as exc:
        typer.echo(f"no test results yet: {exc}", err=True)
        return None
    except (WiltonError, OSError) as exc:
        _console().print(f"[yellow]warning:[/] test results will not be saved: {exc}")
        return None


def _latency(ms: float | None) -> str:
    return f"{ms:.0f} ms" if ms is not None else "-"


WIDE_TABLE_MIN_COLUMNS = 120


def render_rows(rows: Sequence[ModelRow], console: Console | None = None) -> None:
    """One row per model. Below WIDE_TABLE_MIN_COLUMNS the nine columns cannot all keep their
    width, so the short facts share one cell ("selfhost · local · basic") instead of each being
    squeezed to a few letters; the id is never shortened either way."""
    from rich import box
    from rich.table import Table

    c = console or _console()
    wide = c.width >= WIDE_TABLE_MIN_COLUMNS
    table = Table(title="Models", title_justify="left", box=box.HEAVY_HEAD if wide else box.SIMPLE_HEAD,
                  pad_edge=wide)
    # the id is what a client passes as `model`: whole, whatever the width; other cells wrap
    # (a long name folds) rather than lose characters to an ellipsis
    table.add_column("id", no_wrap=True, min_width=max((len(r.id) for r in rows), default=2))
    cols = (("provider", "tier", "local", "capability", "status", "latency", "price", "configured") if wide
            else ("provider / model", "tier · class · capability", "status · key", "price"))
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in rows:
        style = _STATUS_STYLE.get(r.status, "")
        status = f"[{style}]{r.status}[/]" if style else r.status
        key = "yes" if r.configured else "[red]no key[/]"
        if wide:
            table.add_row(r.id, f"{r.provider}:{r.model}", r.tier, "yes" if r.is_local else "no", r.capability,
                          status, _latency(r.latency_ms), r.price, key)
        else:
            latency = f" {_latency(r.latency_ms)}" if r.latency_ms is not None else ""
            table.add_row(r.id, f"{r.provider} / {r.model}",
                          f"{r.tier} · {'local' if r.is_local else 'API'} · {r.capability}",
                          f"{status}{latency} · {'key ok' if r.configured else key}", r.price)
    c.print(table)


def print_results(results: Mapping[str, ProbeResult], console: Console | None = None) -> None:
    c = console or _console()
    for r in results.values():
        mark = "✓" if r.ok else ("-" if r.status == "untested" else "✗")
        style = _STATUS_STYLE.get(r.status, "")
        detail = _latency(r.latency_ms) if r.status == "available" else (r.error or "")
        c.print(f"  {mark} {r.model_id:<24} [{style}]{r.status:<12}[/] {detail}")


def run_tests(
    registry: ModelRegistry,
    ids: Sequence[str] | None,
    timeout: float,
    console: Console | None = None,
) -> dict[str, ProbeResult]:
    """Test with a live progress bar; one line per model as its result arrives."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    c = console or _console()
    total = len(ids) if ids is not None else len(registry.configured())
    with Progress(SpinnerColumn(), TextColumn("testing models"), BarColumn(), MofNCompleteColumn(),
                  console=c, transient=True) as progress:
        task = progress.add_task("test", total=total)

        def done(r: ProbeResult) -> None:
            print_results({r.model_id: r}, progress.console)
            progress.advance(task)

        return asyncio.run(registry.test(ids, timeout=timeout, on_result=done))


@app.command("list")
def list_models(
    config: ConfigOpt = None,
    store_url: StoreOpt = None,
    no_store: NoStoreOpt = False,
    env_file: EnvFileOpt = DEFAULT_ENV_FILE,
) -> None:
    """Every configured model with tier, capability, last test result, price and key state."""
    cfg = load_stack_config(config)
    store = open_status_store(store_url, disabled=no_store, create=False)
    try:
        reg = ModelRegistry(cfg, store=store, environ=merged_environ(env_file))
        render_rows(reg.rows())
    finally:
        if store is not None:
            store.close()


@app.command("test")
def test_models(
    model_id: Annotated[str | None, typer.Argument(help="model id to test")] = None,
    all_: Annotated[bool, typer.Option("--all", help="test every configured model")] = False,
    timeout: Annotated[float, typer.Option(help="seconds per model", min=0.1)] = 30.0,
    config: ConfigOpt = None,
    store_url: StoreOpt = None,
    no_store: NoStoreOpt = False,
    env_file: EnvFileOpt = DEFAULT_ENV_FILE,
) -> None:
    """Send a short real generation to one model (or --all configured ones) and record the result."""
    if (model_id is None) == (not all_):
        typer.echo("wiltonctl models test: give one model ID or --all", err=True)
        raise typer.Exit(2)
    cfg = load_stack_config(config)
    environ = merged_environ(env_file)
    if model_id is not None and model_id not in cfg.by_id():
        typer.echo(f"wiltonctl models test: no configured model '{model_id}' "
                   f"(configured: {', '.join(cfg.by_id()) or 'none'})", err=True)
        raise typer.Exit(2)
    store = open_status_store(store_url, disabled=no_store)
    try:
        reg = ModelRegistry(cfg, store=store, environ=environ)
        ids = [model_id] if model_id is not None else None
        if ids is None and not reg.configured():
            typer.echo("wiltonctl models test: no configured model to test (set the keys named by "
                       "api_key_env, or run `wiltonctl setup`)", err=True)
            raise typer.Exit(1)
        started = time.monotonic()
        results = run_tests(reg, ids, timeout)
    finally:
        if store is not None:
            store.close()
    bad = [r for r in results.values() if not r.ok]
    summary = f"{len(results) - len(bad)}/{len(results)} models answered in {time.monotonic() - started:.1f}s"
    if bad:
        typer.echo(f"{summary}; failed: {', '.join(r.model_id for r in bad)}", err=True)
        raise typer.Exit(1)
    typer.echo(summary)

