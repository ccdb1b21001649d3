"""`wiltonctl phi get|set|rebalance`: read and move the local-share target via the coherence API."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from wilton_core.cli.auth import TokenFileOpt, UrlOpt, coherence_url

__all__ = ["app"]

app = typer.Typer(help="Read or change phi, the target share of requests served locally.",
                  no_args_is_help=True)


def _fmt(x: Any, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{x * 100:.1f}%" if pct else f"{x:.4f}"


def _show(s: dict[str, Any]) -> None:
    typer.echo(f"target     {_fmt(s.get('phi_target'))}")
    window = f"{_fmt(s.get('window_phi'))} over {int(s.get('window_s') or 0)} s"
    if s.get("measured_phi") is None:
        # right after a target change (or a quiet interval) there is nothing to compare yet: say
        # so, instead of "-" that reads like a fault
        n = s.get("window_requests")
        span = int(s.get("window_s") or 0)
        so_far = (f"{n} request{'' if n == 1 else 's'} so far over the last {span} s" if isinstance(n, int)
                  else "request count unknown")
        typer.echo(f"measured   no interval measured since the change ({so_far}); {window}")
        typer.echo("error      none until an interval is measured")
    else:
        typer.echo(f"measured   {_fmt(s.get('measured_phi'))} (last interval); {window}")
        typer.echo(f"error      {_fmt(s.get('error'))}")
    typer.echo(f"threshold  {_fmt(s.get('threshold'), pct=False)} (difficulty above → API)")
    typer.echo(f"steps      {s.get('steps')}")


@app.command("get")
def get(url: UrlOpt = None, token_file: TokenFileOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="print the raw JSON")] = False) -> None:
    """Show target, measured phi, error and threshold."""
    from wilton_core.coherence.client import CoherenceClient

    with CoherenceClient(coherence_url(url), token_file) as client:
        s = client.get_phi()
    if json_out:
        import json

        typer.echo(json.dumps(s, indent=2))  # like every other --json: indented, newline-terminated
    else:
        _show(s)


@app.command("set")
def set_(target: Annotated[str, typer.Argument(help="new target in [0, 1], e.g. 0.6")],
         url: UrlOpt = None, token_file: TokenFileOpt = None) -> None:
    """Set the target local share (needs the phi:write scope)."""
    from wilton_core.coherence.client import CoherenceClient
    from wilton_core.errors import WiltonError

    try:
        value = float(target)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise WiltonError(f"phi target must be a number in [0, 1], got {target!r}")
    with CoherenceClient(coherence_url(url), token_file) as client:
        s = client.set_target(value)
    typer.echo(f"phi target set to {_fmt(s['phi_target'])}; threshold now {_fmt(s['threshold'], pct=False)}")


@app.command("rebalance")
def rebalance(url: UrlOpt = None, token_file: TokenFileOpt = None) -> None:
    """Run a control step now."""
    from wilton_core.coherence.client import CoherenceClient

    with CoherenceClient(coherence_url(url), token_file) as client:
        _show(client.rebalance())
