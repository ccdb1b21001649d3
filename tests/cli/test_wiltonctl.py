"""wiltonctl as a whole: --version, `router serve` forwarding, one meaning per flag, help everywhere."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import typer
from typer.testing import CliRunner

from wilton_core.cli.main import app, main


def _walk(cmd, path: str):  # type: ignore[no-untyped-def]
    # typer >= 0.29 vendors its own click: groups are found by their `commands`, not by class
    yield path, cmd
    if isinstance(getattr(cmd, "commands", None), dict):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, f"{path} {name}")


def test_every_option_and_argument_has_help() -> None:
    root = typer.main.get_command(app)
    missing: list[str] = []
    commands = 0
    for path, cmd in _walk(root, "wiltonctl"):
        commands += 1
        for p in cmd.params:
            if getattr(p, "hidden", False):
                continue
            if not (getattr(p, "help", None) or "").strip():
                missing.append(f"{path} {p.opts[0] if p.opts else p.name}")
    assert commands > 20  # the walk really reached the sub-apps
    assert not missing, "options/arguments without help: " + ", ".join(missing)


def test_dash_c_is_config_everywhere() -> None:
    root = typer.main.get_command(app)
    for path, cmd in _walk(root, "wiltonctl"):
        for p in cmd.params:
            if p.param_type_name == "option" and "-c" in p.opts:
                assert "--config" in p.opts, f"{path}: -c means {p.opts}"


def test_version() -> None:
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"wiltonctl {version('wilton-core')}"


def test_router_serve_shows_the_routers_options_and_errors_as_itself() -> None:
    # issue 18: `--help` listed only --help, and `--bogus` errored as "wilton-router: error"
    run = [sys.executable, "-m", "wilton_core.cli.main", "router", "serve"]
    h = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60)
    assert h.returncode == 0, h.stderr
    for flag in ("--config", "--port", "--store-url", "--workers", "--validate-and-exit"):
        assert flag in h.stdout, flag
    assert "Usage: wiltonctl router serve [OPTIONS]" in h.stdout
    b = subprocess.run([*run, "--bogus"], capture_output=True, text=True, timeout=60)
    assert b.returncode == 2
    assert "Usage: wiltonctl router serve" in b.stderr and "No such option: --bogus" in b.stderr
    assert "wilton-router" not in b.stderr


def test_hpc_takes_a_positional_file_and_keeps_file_as_a_hidden_alias(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "tasks.json"
    bad.write_text('{"name": "x", "tasks": []}')
    store = ["--store-url", f"sqlite:///{tmp_path / 'w.db'}"]
    # validation happens before anything is stored or run: exit 2 naming the file, both spellings
    assert main(["hpc", "schedule-task", str(bad), *store]) == 2
    assert str(bad) in capsys.readouterr().err
    assert main(["hpc", "schedule-task", "--file", str(bad), *store]) == 2
    err = capsys.readouterr().err
    assert "deprecated" in err and str(bad) in err
    assert main(["hpc", "schedule-task", *store]) == 2
    assert "missing the task FILE" in capsys.readouterr().err
    assert "--file" not in CliRunner().invoke(app, ["hpc", "schedule-task", "--help"]).output
