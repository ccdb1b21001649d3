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
    prompt: Annotated[str, typer.Argument(help="the prompt text ('-' reads it from stdin)")],
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="config TOML (default: $WILTON_CONFIG, else the embedded defaults)")] = None,
    store_url: Annotated[str | None, typer.Option(
        "--store-url", help="store holding the published threshold (default: $WILTON_STORE_URL or the data dir)")]
    = None,
    router_url: Annotated[str | None, typer.Option(
        "--router-url", help="router whose served models to use (default: $WILTON_ROUTER_URL or :8080; "
                             "the config's models when it does not answer)")] = None,
    features: Annotated[bool, typer.Option("--features", help="also show the scorer's feature contributions")]
    = False,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Where the router would send this prompt (local or API) and why: difficulty against the
    current threshold, intent, capability need, and the eligible models."""
    from wilton_core.cli.explain import explain_route
    from wilton_core.cli.models import load_stack_config
    from wilton_core.core.difficulty import load_default_scorer
    from wilton_core.registry.envfile import DEFAULT_ENV_FILE, merged_environ

    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        raise WiltonError("route explain: the prompt is empty; give the text to route (or '-' to read stdin)")
    cfg = load_stack_config(config)
    control, source = _published_control(store_url, cfg.routing.phi_target)
    models, models_source = _served_models(router_url)
    info = explain_route(text, cfg, control, threshold_source=source, environ=merged_environ(DEFAULT_ENV_FILE),
                         scorer=load_default_scorer(), models=models, models_source=models_source)
    if json_out:
        typer.echo(json.dumps(info.as_json(), indent=2, ensure_ascii=False, default=str))
        return
    _render_explanation(info, features)


def _published_control(flag: str | None, phi_target: float) -> tuple[Any, str]:
    """The control state the coherence daemon published, else the router's own default."""
    from wilton_core.cli.storeopt import store_url
    from wilton_core.store import StoreError, StoreNotFoundError, open_store
    from wilton_core.store.base import ControlState
    from wilton_core.store.url import redact_url

    url = store_url(flag)  # a bad --store-url is a usage error, not a silent default
    try:
        store = open_store(url, create=False)
    except StoreNotFoundError:
        return ControlState(phi_target=phi_target), f"the default: no store at {redact_url(url)}"
    except StoreError as e:
        return ControlState(phi_target=phi_target), f"the default: store unreachable ({e})"
    try:
        state = store.get_control_state()
    except StoreError as e:
        return ControlState(phi_target=phi_target), f"the default: store unreadable ({e})"
    finally:
        store.close()
    if state is None:
        return ControlState(phi_target=phi_target), "the default: no control state published yet (coherence daemon)"
    return state, f"published by the coherence daemon in {store.url}"


def _served_models(flag: str | None) -> tuple[Any, str]:
    """What the running router serves (its GET /v1/models), else None: the config's models."""
    import os

    import httpx

    from wilton_core.cli.explain import models_from_router
    from wilton_core.settings import load_settings

    url = (flag or load_settings().resolved_router_url()).rstrip("/")
    key = os.environ.get("WILTON_ROUTER_API_KEY")
    try:
        r = httpx.get(url + "/v1/models", timeout=2.0, headers={"authorization": f"Bearer {key}"} if key else {})
        models = models_from_router(r.json()) if r.is_success else None
    except (httpx.HTTPError, ValueError):
        models = None
    if models is None:
        return None, f"from the config (the router at {url} did not list its models)"
    return models, f"as the running router at {url} serves them"


def _render_explanation(info: Any, features: bool) -> None:
    from wilton_core.cli.console import make_console

    console = make_console(highlight=False, markup=False)
    where = {"local": "local", "api": "API"}
    if info.served_by is None:
        console.print("→ nowhere: no configured model can serve this request")
    else:
        console.print(f"→ {where[info.served_by]}: {info.chain[0]}"
                      + (f" (then {', '.join(info.chain[1:])})" if len(info.chain) > 1 else ""))
    cmp = ">" if info.primary == "api" else "≤"
    console.print(f"  difficulty {info.difficulty:.3f} {cmp} threshold {info.threshold:.3f} → the "
                  f"{where[info.primary]} class (threshold: {info.threshold_source}; phi target "
                  f"{info.phi_target:.0%})")
    if info.served_by is not None and info.served_by != info.primary:
        console.print(f"  no {where[info.primary]} model is eligible, so the {where[info.served_by]} class serves it")
    need = f"capability {info.capability_need}" + (", image input" if info.needs_vision else "")
    console.print(f"  intent {info.intent}: needs {need}")
    for cls in ("local", "api"):
        ids = info.eligible.get(cls) or ()
        console.print(f"  eligible {where[cls]}: {', '.join(ids) if ids else 'none'}")
    if info.rejected:
        console.print("  not eligible: " + "; ".join(f"{m} ({why})" for m, why in info.rejected.items()))
    console.print(f"  models: {info.models_source}")
    if features:
        from rich.table import Table

        feats = sorted(info.scorer.get("features", []), key=lambda f: -abs(f.get("contribution", 0.0)))
        table = Table("feature", "value", "contribution", title="difficulty features", title_justify="left")
        for f in feats:
            if f.get("value"):
                table.add_row(str(f["name"]), f"{f['value']:.3f}", f"{f['contribution']:+.3f}")
        console.print(table)
