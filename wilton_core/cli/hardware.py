"""`wiltonctl hardware`: what this machine can run locally, and which Ollama models to pull."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from wilton_core.hardware import HardwareProfile, detect_hardware

__all__ = ["app", "hardware_command", "register", "render_hardware"]


def render_hardware(hw: HardwareProfile) -> None:
    from rich.table import Table

    from wilton_core.cli.console import make_console

    console = make_console()
    table = Table(title="Hardware", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("RAM", f"{hw.total_ram_gb:g} GB total, {hw.available_ram_gb:g} GB available")
    table.add_row("CPU", f"{hw.cpu_cores} physical cores, {hw.cpu_threads} threads")
    table.add_row("GPU", f"{hw.gpu_name} ({hw.gpu_vram_gb:g} GB VRAM)" if hw.gpu_name else "none detected")
    table.add_row("Platform", hw.platform)
    table.add_row("Runs 3B / 7B / 13B", " / ".join("yes" if ok else "no"
                                                   for ok in (hw.can_run_3b, hw.can_run_7b, hw.can_run_13b)))
    table.add_row("Largest local model", hw.max_model_size())
    console.print(table)
    rec = Table(title="Recommended local models (ollama pull <name>)", title_justify="left")
    rec.add_column("intent")
    rec.add_column("model")
    for intent, name in hw.recommend_by_intent().items():
        rec.add_row(intent, name)
    console.print(rec)
    console.print("All recommended: " + ", ".join(hw.recommend_local_models()))


def hardware_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the profile as JSON")] = False,
) -> None:
    """Detect RAM, CPU and GPU, and recommend local models that fit."""
    hw = detect_hardware()
    if as_json:
        typer.echo(json.dumps(hw.as_dict(), indent=2))
    else:
        render_hardware(hw)


def register(parent: typer.Typer) -> None:
    parent.command("hardware")(hardware_command)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("hardware")(hardware_command)
