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
    store_url: _StoreUrl = None,
) -> None:
    """Write each line back with `difficulty` (higher = harder) and `intent` added.

    Scored by the store's active learned version when a store is named (--store-url or
    WILTON_STORE_URL), else by the shipped scorer.
    """
    from wilton_core.core.classify import classify_request

    scorer = cli_scorer(store_url)
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
    from wilton_core.registry.envfile import DEFAULT_ENV_FILE, merged_environ

    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        raise WiltonError("route explain: the prompt is empty; give the text to route (or '-' to read stdin)")
    cfg = load_stack_config(config)
    control, source = _published_control(store_url, cfg.routing.phi_target)
    models, models_source = _served_models(router_url)
    info = explain_route(text, cfg, control, threshold_source=source, environ=merged_environ(DEFAULT_ENV_FILE),
                         scorer=cli_scorer(store_url), models=models, models_source=models_source)
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
    import httpx

    from wilton_core.cli.explain import models_from_router
    from wilton_core.settings import load_settings

    settings = load_settings()
    url = (flag or settings.resolved_router_url()).rstrip("/")
    key = settings.router_api_key_value()
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


# -- adapted scorer versions: route learn / route model (store/difficulty_models.py) -------------

model_app = typer.Typer(help="Difficulty scorer versions in the store (learned with `route learn`).",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")

_StoreUrl = Annotated[str | None, typer.Option("--store-url", help="the shared store (WILTON_STORE_URL)")]
_Json = Annotated[bool, typer.Option("--json", help="print the raw JSON")]


def _versions(store_url: str | None, *, create: bool = False) -> Any:
    """The store's scorer versions. Only `route learn` may create the store; reads never do."""
    from wilton_core.settings import load_settings
    from wilton_core.store import open_store
    from wilton_core.store.difficulty_models import DifficultyVersions

    return DifficultyVersions(open_store(load_settings(store_url=store_url).resolved_store_url(), create=create))


def cli_scorer(store_url: str | None) -> Any:
    """The active learned version when a store is named (--store-url or WILTON_STORE_URL), else
    the shipped scorer (no store file is created just to score)."""
    from wilton_core.core.difficulty import load_default_scorer
    from wilton_core.settings import load_settings
    from wilton_core.store import StoreNotFoundError

    if store_url is None and load_settings().store_url is None:
        return load_default_scorer()
    try:
        return _versions(store_url).active_scorer()[1]
    except StoreNotFoundError:
        return load_default_scorer()  # no store yet: nothing learned, the shipped scorer is the active one


@app.command("learn")
def learn(
    file: Annotated[str, typer.Argument(help="JSON lines with prompt, strong_score, weak_score ('-' = stdin)")],
    store_url: _StoreUrl = None,
    force: Annotated[bool, typer.Option("--force", help="activate even if not better on held-back labels")] = False,
    no_activate: Annotated[bool, typer.Option("--no-activate", help="store the version, keep the active one")] = False,
    json_out: _Json = False,
) -> None:
    """Adapt the active scorer to labelled examples and store it as a new version.

    Warm start from the active version (the shipped scorer when none is), regularised toward it.
    20% of the rows (by a hash of the prompt) are held back; the new version becomes active only
    when its PGR@25% there beats the active one's (or with --force).
    """
    import time

    from wilton_core.core.difficulty_train import LabelError, read_labelled
    from wilton_core.core.difficulty_train import learn as learn_from

    with _open(file) as f:
        try:
            rows = read_labelled(f, where=file)
            versions = _versions(store_url, create=True)
            parent, anchor = versions.active_scorer()
            # The anchor's hash-split figures do not describe the adapted model: dropped.
            inherited = {k: v for k, v in anchor.metadata.items() if k not in ("heldout", "heldout_rows")}
            result = learn_from(anchor, rows, metadata={**inherited, "version": "learned",
                                                        "learned_from": Path(file).name, "parent": parent})
        except LabelError as e:
            raise WiltonError(str(e)) from None
    activate = (result.improved or force) and not no_activate
    summary = {
        "rows": len(rows), "train_rows": result.train_rows, "heldback_rows": result.heldback_rows,
        "heldback_pgr_25_before": result.before_pgr_25, "heldback_pgr_25_after": result.after_pgr_25,
        "improved": result.improved, "source": Path(file).name, "parent": parent,
    }
    version = versions.add(result.scorer, summary, parent, time.time(), activate)
    out = {"version": version, "active": activate, **summary}
    if json_out:
        typer.echo(json.dumps(out, indent=2))
        return

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    typer.echo(f"version {version} from {len(rows)} rows ({result.heldback_rows} held back):"
               f" PGR@25% {fmt(result.before_pgr_25)} -> {fmt(result.after_pgr_25)}; "
               + ("now active" if activate else f"not activated (active: {parent or 'shipped'})"))


@model_app.command("list")
def model_list(store_url: _StoreUrl = None, json_out: _Json = False) -> None:
    """Stored versions; the active one is marked (none: the shipped scorer)."""
    items = _versions(store_url).list()
    if json_out:
        typer.echo(json.dumps([{"version": v.version, "created_at": v.created_at, "parent": v.parent,
                                "active": v.active, **v.summary} for v in items], indent=2))
        return
    typer.echo(("  " if any(v.active for v in items) else "* ") + "shipped (package)")
    for v in items:
        s = v.summary
        typer.echo(f"{'*' if v.active else ' '} {v.version:<4d} parent {v.parent or 'shipped'}  rows {s.get('rows')}"
                   f"  held-back PGR@25% {s.get('heldback_pgr_25_before')} -> {s.get('heldback_pgr_25_after')}")


@model_app.command("show")
def model_show(version: Annotated[int, typer.Argument(help="the version number")], store_url: _StoreUrl = None) -> None:
    """A version's summary and model metadata as JSON."""
    from wilton_core.core.difficulty_versions import VersionError

    versions = _versions(store_url)
    try:
        v = versions.get(version)
        meta = dict(versions.load(version).metadata)
    except VersionError as e:
        raise WiltonError(str(e)) from None
    typer.echo(json.dumps({"version": v.version, "created_at": v.created_at, "parent": v.parent,
                           "active": v.active, "summary": v.summary, "model": meta}, indent=2, default=str))


@model_app.command("rollback")
def model_rollback(store_url: _StoreUrl = None) -> None:
    """Make the active version's parent active again (the shipped scorer for a first version)."""
    from wilton_core.core.difficulty_versions import VersionError

    try:
        parent = _versions(store_url).rollback()
    except VersionError as e:
        raise WiltonError(str(e)) from None
    typer.echo(f"active: {parent if parent is not None else 'shipped'}")


# -- labels from live traffic and the refit on them (issue 16 §2; docs/learning.md) ------------


def _label_store(store_url: str | None) -> Any:
    """The shared store for labels (never created: no store means no labels)."""
    from wilton_core.settings import load_settings
    from wilton_core.store import StoreNotFoundError, open_store

    url = load_settings(store_url=store_url).resolved_store_url()
    try:
        return open_store(url, create=False)
    except StoreNotFoundError:
        raise WiltonError("no store yet: labels come from a running router (POST /v1/feedback)") from None


@app.command("labels")
def labels(store_url: _StoreUrl = None, json_out: _Json = False) -> None:
    """Routing labels from live traffic, by source: how many, how many kept their prompt (only those
    can be learned from), how many scored both tiers; and the last refit's figures."""
    from wilton_core.coherence.refit import last_refit
    from wilton_core.store.route_labels import count_labels

    store = _label_store(store_url)
    try:
        counts = count_labels(store)
        last = last_refit(store)
    finally:
        store.close()
    if json_out:
        typer.echo(json.dumps({"sources": [{"source": c.source, "total": c.total, "with_prompt": c.with_prompt,
                                            "both_tiers": c.both_tiers} for c in counts],
                               "last_refit": last}, indent=2))
        return
    typer.echo(f"{'source':<10} {'labels':>8} {'with prompt':>12} {'both tiers':>11}")
    for c in counts:
        typer.echo(f"{c.source:<10} {c.total:>8} {c.with_prompt:>12} {c.both_tiers:>11}")
    if not counts:
        typer.echo("(none yet: POST /v1/feedback, or shadow judging, with WILTON_CAPTURE_PROMPTS=1 to learn)")
    if last is not None:
        typer.echo(f"last refit: {_refit_line(last)}")


def _refit_line(out: dict[str, Any]) -> str:
    def fmt(x: Any) -> str:
        return "n/a" if x is None else f"{float(x):.3f}"

    figures = (f"held-back PGR@25% {fmt(out.get('heldback_pgr_25_before'))} (active) -> "
               f"{fmt(out.get('heldback_pgr_25_after'))} (candidate) on {out.get('heldback_rows', 0)} labels")
    reason = out.get("reason")
    if reason == "published":
        return f"version {out.get('version')} published and active; {figures}"
    if reason == "too_few_labels":
        return f"not fitted: {out.get('labels', 0)} learnable labels, fewer than needed"
    what = "not better" if reason == "not_better" else "held-back PGR undefined (too few or uniform labels)"
    return f"kept the active scorer ({what}); {figures}"


@app.command("refit")
def refit(
    store_url: _StoreUrl = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="config TOML for [learning] refit_min_labels (default: $WILTON_CONFIG)")] = None,
    min_labels: Annotated[int | None, typer.Option(
        "--min-labels", min=20, help="learnable labels needed (default: [learning] refit_min_labels)")] = None,
    json_out: _Json = False,
) -> None:
    """One refit now, by the coherence daemon's rule: learn from the newest labels, publish the new
    version only if it beats the active one on held-back labels. Exit 0 when published or not
    better; non-zero when it could not be fitted (too few labels) or failed."""
    import time

    from wilton_core.cli.models import load_stack_config
    from wilton_core.coherence.refit import refit as run_refit

    needed = min_labels if min_labels is not None else load_stack_config(config).learning.refit_min_labels
    store = _label_store(store_url)
    try:
        out = run_refit(store, now=time.time(), min_labels=needed)
    finally:
        store.close()
    if json_out:
        typer.echo(json.dumps(out.as_json(), indent=2))
    else:
        typer.echo(_refit_line(out.as_json()) + (f" (needs {needed})" if out.reason == "too_few_labels" else ""))
    if out.reason not in ("published", "not_better"):
        raise typer.Exit(1)
