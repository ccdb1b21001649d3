"""`wiltonctl login` / `wiltonctl logout`: tokens for the coherence API, cached in a 0600 file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["login", "logout", "register"]

UrlOpt = Annotated[str | None, typer.Option("--url", help="coherence API (default: WILTON_COHERENCE_URL)")]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option("--token-file", help="token cache (default: WILTON_TOKEN_FILE or ~/.config/wilton/token.json)"),
]


def coherence_url(url: str | None) -> str:
    from wilton_core.settings import load_settings

    return url or load_settings().resolved_coherence_url()


def login(
    username: Annotated[str | None, typer.Option("--username", "-u", help="user (prompted when absent)")] = None,
    password: Annotated[str | None, typer.Option("--password", "-p", help="password (prompted when absent)")] = None,
    scope: Annotated[str, typer.Option("--scope", help="space-separated scopes (default: all granted)")] = "",
    url: UrlOpt = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Log in to the coherence daemon and cache the tokens."""
    from wilton_core.coherence.client import CoherenceClient

    user = username or typer.prompt("Username", default="admin")
    secret = password if password is not None else typer.prompt("Password", hide_input=True)
    with CoherenceClient(coherence_url(url), token_file) as client:
        data = client.login(user, secret, scope)
        typer.echo(f"logged in to {client.base_url} as {user} (scope: {data['scope']}); "
                   f"tokens cached in {client.token_file}")


def logout(token_file: TokenFileOpt = None) -> None:
    """Forget the cached tokens."""
    from wilton_core.coherence.client import default_token_file

    path = token_file or default_token_file()
    try:
        path.unlink()
        typer.echo(f"removed {path}")
    except FileNotFoundError:
        typer.echo("not logged in")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
