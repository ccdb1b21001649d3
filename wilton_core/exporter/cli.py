"""`wilton-exporter`: thin CLI -> settings -> ExporterService -> collector library.

    wilton-exporter --port 8000 --store-url sqlite:///data/wilton.db --config wilton.toml
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Annotated

import typer

from wilton_core.cli.entry import new_app
from wilton_core.errors import ConfigError, StoreError

__all__ = ["app", "main"]

log = logging.getLogger("wilton_core.exporter")
app = new_app()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (WILTON_HOST, default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (WILTON_EXPORTER_PORT, default 8000; 0 = any free)")] = None,
    config: Annotated[str | None, typer.Option(help="stack config TOML (WILTON_CONFIG)")] = None,
    store_url: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://... (WILTON_STORE_URL)")] = None,
    api_budget_usd_per_hour: Annotated[float | None, typer.Option(
        help="API spend budget exported for the alert (WILTON_API_BUDGET_USD_PER_HOUR)")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning (WILTON_LOG_LEVEL)")] = None,
) -> int:
    """Prometheus metrics from the WiltonOS store.

    Exit codes: 0 clean stop (SIGTERM), 1 store or port unavailable, 2 bad flags, settings or config.
    """
    # lazy: settings pull pydantic and the config; keep --help instant
    from wilton_core.exporter.service import ExporterService
    from wilton_core.exporter.settings import load_exporter_settings

    try:
        settings = load_exporter_settings(
            host=host, exporter_port=port, config=config, store_url=store_url,
            api_budget_usd_per_hour=api_budget_usd_per_hour, log_level=log_level,
        )
        options = settings.export_options()
    except ConfigError as e:
        print(f"wilton-exporter: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from wilton_core.store import open_store

    try:
        store = open_store(settings.resolved_store_url())
        store.migrate()
    except (StoreError, OSError) as e:
        print(f"wilton-exporter: cannot open the store: {e}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service = ExporterService(store, options, host=settings.host, port=settings.exporter_port)
    try:
        service.start()
    except OSError as e:
        print(f"wilton-exporter: cannot listen on {settings.host}:{settings.exporter_port}: {e.strerror}",
              file=sys.stderr)
        store.close()
        return 1
    # the real port matters when --port 0; scripts and tests read it from this line
    print(f"wilton-exporter listening on http://{settings.host}:{service.port}/metrics (store {store.url})",
          flush=True)
    try:
        stop.wait()
    finally:
        service.stop()
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from wilton_core.cli.entry import run_app

    return run_app(app, argv, "wilton-exporter")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
