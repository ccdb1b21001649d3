"""`wiltonctl route`: audit routing decisions offline with the exact function the router uses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from wilton_core.errors import WiltonError

__all__ = ["app"]

app = typer.Typer(help="Score requests offline exactly as the router does.", no_args_is_help=True)


def _request_of(obj: Any, where: str) -> Any:
    if not isinstance(obj, dict):
        raise WiltonError(f"{where}: expected a JSON object with 'prompt' or 'messages'")
    if isinstance(obj.get("messages"), list) and obj["messages"]:
        return obj["messages"]
    if isinstance(obj.get("prompt"), str):
        return obj["prompt"]
    raise WiltonError(f"{where}: needs 'prompt' (a string) or 'messages' (a non-empty OpenAI messages list)")


def _open(file: str) -> TextIO:
    if file == "-":
        return sys.stdin
    try:
        return Path(file).open(encoding="utf-8")
    except OSError as e:
        raise WiltonError(f"{file}: cannot read ({e.strerror})") from None


@app.command("score")
def score(
    file: Annotated[str, typer.Argument(help="JSON lines with 'prompt' or 'messages' ('-' = stdin)")],
) -> None:
    """Write each line back with `difficulty` (higher = harder) and `intent` added."""
    from wilton_core.core.classify import classify_request
    from wilton_core.core.difficulty import load_default_scorer

    scorer = load_default_scorer()
    # validate everything first: a bad line 900 must not leave 899 lines half-written
    rows: list[tuple[dict[str, Any], Any]] = []
    with _open(file) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise WiltonError(f"{file}:{n}: not valid JSON ({e.msg})") from None
            rows.append((obj, _request_of(obj, f"{file}:{n}")))
    out = sys.stdout
    for obj, request in rows:
        intent, difficulty = classify_request(request, scorer)
        out.write(json.dumps({**obj, "difficulty": round(difficulty, 6), "intent": intent.value},
                             ensure_ascii=False) + "\n")


@app.command("explain")
def explain(
    prompt: Annotated[str, typer.Argument(help="the prompt text")],
    json_out: Annotated[bool, typer.Option("--json", help="print the raw JSON")] = False,
) -> None:
    """Print the features, their contributions and the score for one prompt."""
    from wilton_core.core.difficulty import load_default_scorer

    info = load_default_scorer().explain(prompt)
    if json_out:
        typer.echo(json.dumps(info, indent=2, ensure_ascii=False, default=str))
        return
    from rich.table import Table

    from wilton_core.cli.console import make_console

    console = make_console()
    console.print(f"intent: [bold]{info.get('intent')}[/]   difficulty: [bold]{info.get('score', 0):.3f}[/]")
    feats = sorted(info.get("features", []), key=lambda f: -abs(f.get("contribution", 0.0)))
    table = Table("feature", "value", "contribution")
    for f in feats:
        if f.get("value"):
            table.add_row(str(f["name"]), f"{f['value']:.3f}", f"{f['contribution']:+.3f}")
    console.print(table)
    extra = {k: v for k, v in info.items() if k not in ("features", "intent", "score")}
    if extra:
        console.print({k: v for k, v in extra.items() if not isinstance(v, list | dict)})
