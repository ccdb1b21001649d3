"""`wiltonctl keys`: the gateway's client keys (docs/access.md).

    wiltonctl keys create --name team-a [--budget-usd 50 --budget-period month] [--rpm 60]
                          [--tpm 100000] [--models local-*,gpt-4o] [--local-only] [--expires 30d] [--json]
    wiltonctl keys list [--json]          spend against budget, all replicas
    wiltonctl keys show KEY [--json]      KEY: id, name or the shown prefix
    wiltonctl keys rotate KEY [--grace 1h] [--json]
    wiltonctl keys revoke KEY

The CLI writes the shared store directly, as the other wiltonctl commands do: whoever can run
it with the store's URL administers keys. Routers see a change within WILTON_KEY_REFRESH_S
(1 s) plus one store read. The key is printed once; the store keeps only its SHA-256.
Exit codes: 0 ok, 2 bad input or unknown key, 3 store unavailable.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wilton_core.errors import WiltonError

if TYPE_CHECKING:
    from wilton_core.access.keys import ApiKey, KeyRepo, KeyUsage

__all__ = ["app"]

app = typer.Typer(help="Client keys of the gateway: create, list, show, rotate, revoke.", no_args_is_help=True,
                  add_completion=False)

StoreOpt = Annotated[str | None, typer.Option("--store-url", help="WILTON_STORE_URL (default sqlite under ./data)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"wiltonctl keys: {message}", err=True)
    return typer.Exit(code)


def _repo(store_url: str | None) -> KeyRepo:
    from wilton_core.access.keys import KeyRepo
    from wilton_core.settings import load_settings
    from wilton_core.store import open_store

    try:
        settings = load_settings(store_url=store_url)
    except WiltonError as e:
        raise _fail(str(e), 2) from None
    try:
        store = open_store(settings.resolved_store_url())
        store.migrate()
    except WiltonError as e:
        raise _fail(f"store unavailable: {e}", 3) from None
    return KeyRepo(store)


def _get(repo: KeyRepo, ref: str) -> ApiKey:
    from wilton_core.access.keys import KeyAdminError

    try:
        return repo.get(ref)
    except KeyAdminError as e:
        raise _fail(str(e), 2) from None


def _describe(key: ApiKey, usage: KeyUsage | None, now: float) -> dict[str, Any]:
    out = key.public(now)
    if usage is not None:
        out.update(spent_usd=round(usage.period_cost_usd, 6), spent_total_usd=round(usage.total_cost_usd, 6),
                   requests=usage.requests, refused=usage.refused, tokens=usage.tokens)
    return out


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.2f}"


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="unique name, e.g. team-a")],
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="spend limit in USD")] = None,
    budget_period: Annotated[str, typer.Option("--budget-period", help="day, week, month or total")] = "total",
    rpm: Annotated[int | None, typer.Option("--rpm", help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", help="tokens per minute")] = None,
    models: Annotated[str | None, typer.Option("--models", help="allow-list globs, e.g. local-*,gpt-4o")] = None,
    local_only: Annotated[bool, typer.Option("--local-only", help="never sent to a non-local model")] = False,
    expires: Annotated[str | None, typer.Option("--expires", help="lifetime, e.g. 30d, 12h")] = None,
    as_json: JsonOpt = False,
    store_url: StoreOpt = None,
) -> None:
    """Create a key and print it once."""
    from wilton_core.access.keys import KeyAdminError, KeySpec, parse_duration, parse_models

    try:
        spec = KeySpec(name=name, budget_usd=budget_usd, budget_period=budget_period, rpm=rpm, tpm=tpm,
                       models=parse_models(models), local_only=local_only,
                       expires_in_s=parse_duration(expires) if expires else None)
    except KeyAdminError as e:
        raise _fail(str(e), 2) from None
    repo = _repo(store_url)
    try:
        key, secret = repo.create(spec)
    except KeyAdminError as e:
        raise _fail(str(e), 2) from None
    finally:
        repo.store.close()
    if as_json:
        typer.echo(json.dumps({"id": key.id, "name": key.name, "key": secret}))
        return
    typer.echo(f"created key {key.name} ({key.id})")
    typer.echo(f"  {secret}")
    typer.echo("This is the only time the key is shown: store it now. Clients send it as "
               "'Authorization: Bearer <key>'.")


@app.command("list")
def list_keys(as_json: JsonOpt = False, store_url: StoreOpt = None) -> None:
    """Every key with its state and spend against budget (all replicas)."""
    repo = _repo(store_url)
    try:
        now = time.time()
        keys = repo.all()
        usage = repo.usage(keys, now)
    finally:
        repo.store.close()
    rows = [_describe(k, usage.get(k.id), now) for k in keys]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no keys (the router is open on loopback unless WILTON_MASTER_KEY is set)")
        return
    typer.echo(f"{'NAME':<20} {'ID':<17} {'PREFIX':<17} {'STATE':<8} {'SPENT / BUDGET':<24} {'RPM':>6} {'TPM':>8} "
               "MODELS")
    for r in rows:
        budget = f"{_money(r['spent_usd'])} / {_money(r['budget_usd'])}"
        if r["budget_usd"] is not None and r["budget_period"] != "total":
            budget += f" /{r['budget_period']}"
        models = ",".join(r["models"]) or "*"
        if r["local_only"]:
            models += " (local only)"
        typer.echo(f"{r['name']:<20} {r['id']:<17} {r['prefix']:<17} {r['state']:<8} {budget:<24} "
                   f"{r['rpm'] or '-':>6} {r['tpm'] or '-':>8} {models}")


@app.command("show")
def show(ref: Annotated[str, typer.Argument(help="key id, name or shown prefix")], as_json: JsonOpt = False,
         store_url: StoreOpt = None) -> None:
    """One key's settings and spend."""
    repo = _repo(store_url)
    try:
        now = time.time()
        key = _get(repo, ref)
        row = _describe(key, repo.usage([key], now).get(key.id), now)
    finally:
        repo.store.close()
    if as_json:
        typer.echo(json.dumps(row))
        return
    for k, v in row.items():
        if k.endswith("_at") and isinstance(v, float):
            v = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(v))
        typer.echo(f"{k:<16} {v if v is not None else '-'}")


@app.command("rotate")
def rotate(
    ref: Annotated[str, typer.Argument(help="key id, name or shown prefix")],
    grace: Annotated[str | None, typer.Option("--grace", help="the old key keeps working this long, e.g. 1h")] = None,
    as_json: JsonOpt = False,
    store_url: StoreOpt = None,
) -> None:
    """A new secret for the same key (same id, limits and spend); print it once."""
    from wilton_core.access.keys import KeyAdminError, parse_duration

    repo = _repo(store_url)
    try:
        key = _get(repo, ref)
        key, secret = repo.rotate(key.id, parse_duration(grace) if grace else 0.0)
    except KeyAdminError as e:
        raise _fail(str(e), 2) from None
    finally:
        repo.store.close()
    if as_json:
        typer.echo(json.dumps({"id": key.id, "name": key.name, "key": secret}))
        return
    typer.echo(f"rotated key {key.name} ({key.id}); the old key "
               + (f"works until {time.strftime('%H:%M:%SZ', time.gmtime(key.previous_until))}"
                  if key.previous_until else "stops working within seconds"))
    typer.echo(f"  {secret}")


@app.command("revoke")
def revoke(ref: Annotated[str, typer.Argument(help="key id, name or shown prefix")],
           store_url: StoreOpt = None) -> None:
    """Revoke a key: every router refuses it within seconds."""
    repo = _repo(store_url)
    try:
        key = repo.revoke(_get(repo, ref).id)
    finally:
        repo.store.close()
    typer.echo(f"revoked key {key.name} ({key.id})")
