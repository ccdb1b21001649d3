"""`wilton-exporter`: thin CLI -> settings -> ExporterService -> collector library.

    wilton-exporter --port 8000 --store-url sqlite:///data/wilton.db --config wilton.toml
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from wilton_core.errors import ConfigError, StoreError

__all__ = ["build_parser", "main"]

log = logging.getLogger("wilton_core.exporter")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wilton-exporter", description="Prometheus metrics from the WiltonOS store.")
    p.add_argument("--host", default=None, help="bind address (WILTON_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (WILTON_EXPORTER_PORT, default 8000; 0 = any free)")
    p.add_argument("--config", default=None, help="stack config TOML (WILTON_CONFIG)")
    p.add_argument("--store-url", default=None, help="sqlite:///path or postgresql://... (WILTON_STORE_URL)")
    p.add_argument("--api-budget-usd-per-hour", type=float, default=None,
                   help="API spend budget exported for the alert (WILTON_API_BUDGET_USD_PER_HOUR)")
    p.add_argument("--log-level", default=None, help="debug|info|warning (WILTON_LOG_LEVEL)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # lazy: settings pull pydantic and the config; keep --help instant
    from wilton_core.exporter.service import ExporterService
    from wilton_core.exporter.settings import load_exporter_settings

    try:
        settings = load_exporter_settings(
            host=args.host, exporter_port=args.port, config=args.config, store_url=args.store_url,
            api_budget_usd_per_hour=args.api_budget_usd_per_hour, log_level=args.log_level,
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


if __name__ == "__main__":
    raise SystemExit(main())
