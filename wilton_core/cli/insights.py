"""`wiltonctl insights list|show`: the reports the insight hook stored (table insight_reports)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from wilton_core.errors import ConfigError, StoreError

__all__ = ["app"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Insight reports (hourly LLM analysis).")

StoreUrl = Annotated[str | None, typer.Option("--store-url", help="WILTON_STORE_URL")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _open(flag: str | None) -> Any:
    """The store, only if it exists: listing reports must never create one (exit 1 when missing,
    2 for a bad URL or an unreachable store)."""
    from wilton_core.cli.storeopt import open_existing_store, store_url
    from wilton_core.store import StoreNotFoundError

    try:
        return open_existing_store(store_url(flag))
    except StoreNotFoundError as e:
        typer.echo(f"wiltonctl insights: {e}", err=True)
        raise typer.Exit(1) from None
    except (ConfigError, StoreError) as e:
        typer.echo(f"wiltonctl insights: {e}", err=True)
        raise typer.Exit(2) from None


@app.command("list")
def list_cmd(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many, newest first")] = 20,
    store_url: StoreUrl = None,
    as_json: AsJson = False,
) -> None:
    """The newest reports: id, time, status, who wrote them."""
    from wilton_core.insight.archive import list_reports
    from wilton_core.insight.report import utc_iso

    store = _open(store_url)
    try:
        rows = list_reports(store, limit)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([
            {"id": r.id, "created_at": r.created_at, "status": r.status, "reason": r.reason,
             "backend": r.backend, "model": r.model} for r in rows
        ], indent=2))
        return
    from rich.table import Table

    from wilton_core.cli.console import make_console

    if not rows:
        typer.echo("no insight reports yet (start wilton-insight, or run `wilton-insight --once`)")
        return
    table = Table("id", "created (UTC)", "status", "written by", "reason")
    for r in rows:
        style = "green" if r.status == "ok" else "yellow"
        who = f"{r.model} ({r.backend})" if r.model else r.backend
        table.add_row(r.id, utc_iso(r.created_at), f"[{style}]{r.status}[/]", who, r.reason or "")
    make_console().print(table)


@app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="report id, a unique id prefix, or 'latest'")] = "latest",
    store_url: StoreUrl = None,
    as_json: AsJson = False,
) -> None:
    """One report: the numbers, then the model's analysis."""
    from wilton_core.insight.archive import get_report

    store = _open(store_url)
    try:
        found = get_report(store, ref)
    finally:
        store.close()
    if found is None:
        typer.echo(f"wiltonctl insights: no report {ref!r} (see `wiltonctl insights list`)", err=True)
        raise typer.Exit(1)
    report, markdown = found
    if as_json:
        typer.echo(report.to_json())
        return
    from rich.markdown import Markdown

    from wilton_core.cli.console import make_console

    make_console().print(Markdown(markdown))
