"""`wiltonctl`: the one CLI. Each area lives in its own module as a typer sub-app.

Errors are one readable line on stderr and a non-zero exit; never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from wilton_core.cli.entry import new_app
from wilton_core.errors import WiltonError

__all__ = ["app", "main"]

app = new_app(name="wiltonctl", help="WiltonOS LLM stack control.", no_args_is_help=True)
config_app = typer.Typer(help="Validate and inspect configuration.", no_args_is_help=True)
router_app = typer.Typer(help="The OpenAI-compatible router (gateway).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(router_app, name="router")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"wiltonctl {version('wilton-core')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            typer.echo("wiltonctl (wilton-core not installed: version unknown)")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                               help="print the version and exit")] = False,
) -> None:
    """WiltonOS LLM stack control."""


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="TOML config file to validate")],
) -> None:
    """Validate a config file without starting anything."""
    from wilton_core.config import load_config

    cfg = load_config(file)
    configured = [m for m in cfg.models if m.is_configured()]
    typer.echo(f"{file}: ok — {len(cfg.models)} models, {len(configured)} configured now")
    for m in cfg.models:
        state = "configured" if m.is_configured() else f"not configured (set {' or '.join(m.key_env_names)})"
        typer.echo(f"  {m.id:<24} {m.provider:<9} {m.tier:<8} {'local' if m.is_local else 'api':<5} {state}")


@config_app.command("show")
def config_show(
    file: Annotated[Path | None, typer.Argument(help="config file (default: $WILTON_CONFIG or embedded)")] = None,
) -> None:
    """Print the effective model table (embedded defaults when no file is given)."""
    from wilton_core.config import default_config, load_config

    cfg = load_config(file) if file else default_config()
    for m in cfg.models:
        typer.echo(f"{m.id:<24} {m.provider:<9} {m.model:<28} {m.tier:<8} local={m.is_local} cap={m.capability}")


ROUTER_SERVE_PROG = "wiltonctl router serve"


# every argument, --help included, goes to wilton-router's own typer app: one list of options,
# whose help and errors name this command
@router_app.command("serve", add_help_option=False,
                    context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def router_serve(ctx: typer.Context) -> None:
    """Run the router in the foreground (same flags as `wilton-router`; see `--help`)."""
    from wilton_core.router.cli import main as router_main

    raise typer.Exit(router_main(list(ctx.args), prog=ROUTER_SERVE_PROG))


def _register_areas() -> None:
    # One line per area, each in its own module; imports stay cheap (heavy work is inside commands).
    from wilton_core.cli import auth, hardware, hpc, insights, keys, models, phi, route, setup, status

    for mod in (auth, status, hardware, setup):
        mod.register(app)  # single commands: login/logout, status, hardware, setup
    app.add_typer(phi.app, name="phi")
    app.add_typer(route.app, name="route")
    app.add_typer(models.app, name="models")
    app.add_typer(insights.app, name="insights")
    app.add_typer(hpc.app, name="hpc")
    app.add_typer(keys.app, name="keys")
    from wilton_core.cli import voice  # the voice bridge (issue 19)

    app.add_typer(voice.app, name="voice")


_register_areas()


def main(argv: Sequence[str] | None = None) -> int:
    from wilton_core.router.cli import quiet_client_loggers

    quiet_client_loggers()  # per-request INFO lines of HTTP clients never belong in a CLI's output
    from wilton_core.cli.entry import run_app

    try:
        return run_app(app, argv, "wiltonctl")
    except WiltonError as e:
        print(f"wiltonctl: {e}", file=sys.stderr)
        return 2

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
