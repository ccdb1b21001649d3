"""`wilton-coherence`: thin CLI → settings → CoherenceService → uvicorn.

Readable one-line errors and a non-zero exit, never a traceback, for bad flags or settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wilton_core.errors import WiltonError

if TYPE_CHECKING:
    from wilton_core.coherence.service import CoherenceOptions
    from wilton_core.settings import Settings

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wilton-coherence",
        description="Coherence daemon: measures phi from the shared store, moves the routing threshold "
        "to hold the target, and serves a JWT-protected API to change it.",
    )
    p.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                   help="control interval (default 10)")
    p.add_argument("--username", default="admin", help="API admin user (default admin)")
    p.add_argument("--password", default=None,
                   help="admin password (prefer env WILTON_ADMIN_PASSWORD: flags are visible in ps); "
                   "without either, one is generated at first start and printed once")
    p.add_argument("--phi-target", type=float, default=None,
                   help="set the target at start (default: keep the stored one; 0.75 on a fresh store)")
    p.add_argument("--port", type=int, default=None, help="port (default 8001 or WILTON_COHERENCE_PORT)")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1 or WILTON_HOST)")
    p.add_argument("--config", default=None, help="stack config TOML (default WILTON_CONFIG)")
    p.add_argument("--store-url", default=None, help="sqlite:///path or postgresql://... (WILTON_STORE_URL)")
    p.add_argument("--data-dir", default=None, help="data directory (WILTON_DATA_DIR)")
    p.add_argument("--log-level", default=None, help="uvicorn log level (WILTON_LOG_LEVEL)")
    return p


def _options(args: argparse.Namespace) -> tuple[Settings, CoherenceOptions]:
    from wilton_core.coherence.service import CoherenceOptions
    from wilton_core.core.controller import ControllerConfig
    from wilton_core.settings import load_settings

    settings = load_settings(config=args.config, store_url=args.store_url, host=args.host,
                             coherence_port=args.port, data_dir=args.data_dir, log_level=args.log_level)
    stack = settings.stack_config()
    routing = stack.routing
    try:
        opts = CoherenceOptions(
            interval_s=args.interval,
            phi_target=args.phi_target,
            default_target=routing.phi_target,
            username=args.username,
            password=args.password or os.environ.get("WILTON_ADMIN_PASSWORD") or None,
            data_dir=settings.data_dir,
            window_s=routing.window_s,
            difficulty_window_s=max(60.0, 6 * args.interval),
            controller=ControllerConfig(phi_basis=routing.phi_basis, default_target=routing.phi_target),
            refit_interval_s=stack.learning.refit_interval_s,
            refit_min_labels=stack.learning.refit_min_labels,
        )
    except ValueError as e:
        raise WiltonError(str(e).splitlines()[0]) from None
    return settings, opts


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        settings, opts = _options(args)
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
        config = uvicorn.Config(create_app(service), host=settings.host, port=settings.coherence_port,
                                log_level=settings.log_level, lifespan="off", proxy_headers=False)
        uvicorn.Server(config).run()
    finally:
        service.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
