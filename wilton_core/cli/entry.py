"""Run a typer app as a process's entry point and return its exit code (never a traceback for a usage error).

Shared by `wiltonctl`, `wilton-insight` and the single-command process CLIs (`wilton-router`, `wilton-coherence`,
`wilton-exporter`, the fake upstream), so they parse, print help and fail the same way. Kept to
sys + typer: `--help` must not import the stack.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

__all__ = ["new_app", "run_app"]


def new_app(**kwargs: Any) -> typer.Typer:
    """A root typer app in the stack's one help style: plain click help and errors (no rich
    rendering: it costs `--help` about half a second), no shell-completion options, and no
    pretty tracebacks (an unexpected error is a bug to report as it is)."""
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, **kwargs)


def run_app(app: typer.Typer, argv: Sequence[str] | None, prog: str) -> int:
    """Run `app` on `argv` (sys.argv[1:] when None) as `prog`; the command's int return value, or
    typer.Exit's code, is the exit code. Usage errors are printed the typer way and give 2."""
    try:
        # standalone_mode=False: click returns the command's value (and typer.Exit's code) instead of exiting
        rv = app(args=list(argv) if argv is not None else sys.argv[1:], standalone_mode=False, prog_name=prog)
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except typer.Abort:
        print(f"{prog}: aborted", file=sys.stderr)
        return 130
    except Exception as e:  # usage errors (typer ships its own click: match by duck type)
        show = getattr(e, "show", None)
        if show is not None and hasattr(e, "exit_code"):
            show()
            return int(e.exit_code)
        raise
    return rv if isinstance(rv, int) else 0
