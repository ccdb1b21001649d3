"""`wilton-coherence`: thin CLI → settings → CoherenceService → uvicorn.

Readable one-line errors and a non-zero exit, never a traceback, for bad flags or settings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from wilton_core.cli.entry import new_app
from wilton_core.errors import WiltonError

if TYPE_CHECKING:
    from wilton_core.coherence.service import CoherenceOptions
    from wilton_core.settings import Settings

__all__ = ["app", "main"]


app = new_app()


@app.command()
def serve(
    interval: Annotated[float, typer.Option(metavar="SECONDS", help="control interval (default 10)")] = 10.0,
    username: Annotated[str, typer.Option(help="API admin user (default admin)")] = "admin",
    password: Annotated[str | None, typer.Option(
        help="admin password (prefer env WILTON_ADMIN_PASSWORD: flags are visible in ps); without either, "
             "one is generated at first start and printed once")] = None,
    phi_target: Annotated[float | None, typer.Option(
        help="set the target at start (default: keep the stored one; 0.75 on a fresh store)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8001 or WILTON_COHERENCE_PORT)")] = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1 or WILTON_HOST)")] = None,
    config: Annotated[str | None, typer.Option(help="stack config TOML (default WILTON_CONFIG)")] = None,
    store_url: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://... (WILTON_STORE_URL)")] = None,
    data_dir: Annotated[str | None, typer.Option(help="data directory (WILTON_DATA_DIR)")] = None,
    log_level: Annotated[str | None, typer.Option(help="uvicorn log level (WILTON_LOG_LEVEL)")] = None,
) -> int:
    """Coherence daemon: measures phi from the shared store, moves the routing threshold to hold
    the target, and serves a JWT-protected API to change it.

    Exit codes: 0 clean stop, 2 bad flags, settings or config.
    """
    try:
        from wilton_core.settings import load_settings

        settings = load_settings(config=config, store_url=store_url, host=host, coherence_port=port,
                                 data_dir=data_dir, log_level=log_level, admin_password=password)
        opts = _options(settings, interval=interval, username=username, phi_target=phi_target)
        import uvicorn

        from wilton_core.coherence.app import create_app
        from wilton_core.coherence.service import CoherenceService

        service = CoherenceService(opts, store_url=settings.resolved_store_url())
        service.start()
    except WiltonError as e:
        print(f"wilton-coherence: {e}", file=sys.stderr)
        return 2
    try:
        # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from any 127.0.0.1 peer
        # as the client address, and the login throttle is keyed by it: rotating the header
        # would give a local attacker unlimited password guesses.
        uconfig = uvicorn.Config(create_app(service), host=settings.host, port=settings.coherence_port,
                                 log_level=settings.log_level, lifespan="off", proxy_headers=False)
        uvicorn.Server(uconfig).run()
    finally:
        service.stop()
    return 0


def _options(settings: Settings, *, interval: float, username: str, phi_target: float | None) -> CoherenceOptions:
    from wilton_core.coherence.service import CoherenceOptions
    from wilton_core.core.controller import ControllerConfig

    stack = settings.stack_config()
    routing = stack.routing
    try:
        return CoherenceOptions(
            interval_s=interval,
            phi_target=phi_target,
            default_target=routing.phi_target,
            username=username,
            password=settings.admin_password_value(),
            data_dir=settings.data_dir,
            window_s=routing.window_s,
            difficulty_window_s=max(60.0, 6 * interval),
            controller=ControllerConfig(phi_basis=routing.phi_basis, default_target=routing.phi_target),
            refit_interval_s=stack.learning.refit_interval_s,
            refit_min_labels=stack.learning.refit_min_labels,
        )
    except ValueError as e:
        raise WiltonError(str(e).splitlines()[0]) from None


def main(argv: Sequence[str] | None = None) -> int:
    from wilton_core.cli.entry import run_app

    return run_app(app, argv, "wilton-coherence")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
