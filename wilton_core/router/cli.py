"""`wilton-router`: thin CLI → settings → RouterService → ASGI app → HTTP server.

The HTTP server is our own (router/server.py): measured against uvicorn and granian it is the
fastest at the load a router sees and passes the hostile-client suite (docs/benchmarks.md, "HTTP
server decision"); it enforces the server limits from the settings (docs/reliability.md "Server
limits").

Exit codes: 0 clean stop, 2 bad config/settings, 3 store unreachable.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from wilton_core.errors import ConfigError, StoreError

__all__ = ["build_app", "main"]

log = logging.getLogger("wilton.router")



def _parser(prog: str = "wilton-router") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="OpenAI-compatible, phi-balanced LLM router")
    p.add_argument("--config", help="TOML config file (default: $WILTON_CONFIG, else embedded defaults)")
    p.add_argument("--host", help="bind address (default 127.0.0.1, $WILTON_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080, $WILTON_ROUTER_PORT)")
    p.add_argument("--store-url", help="sqlite:///path or postgresql://... ($WILTON_STORE_URL)")
    p.add_argument("--replica-id", help="name of this replica in the ledger (default: hostname)")
    p.add_argument("--log-level", default=None)
    p.add_argument("--workers", type=int, default=None,
                   help="router processes sharing the port (default 1, $WILTON_ROUTER_WORKERS)")
    p.add_argument("--header-timeout", type=float, default=None, metavar="S",
                   help="seconds to receive a request's line and headers (default 10, $WILTON_ROUTER_HEADER_TIMEOUT_S)")
    p.add_argument("--body-timeout", type=float, default=None, metavar="S",
                   help="seconds to receive a request's body; for a streamed (chunked) upload, the longest "
                        "silence between two chunks (default 30, $WILTON_ROUTER_BODY_TIMEOUT_S)")
    p.add_argument("--keep-alive", type=float, default=None, metavar="S",
                   help="an idle connection is closed after (default 5, $WILTON_ROUTER_KEEP_ALIVE_S)")
    p.add_argument("--max-header-bytes", type=int, default=None, metavar="N",
                   help="request line + headers, above it 431 (default 16384, $WILTON_ROUTER_MAX_HEADER_BYTES)")
    p.add_argument("--max-headers", type=int, default=None, metavar="N",
                   help="request header count, above it 431 (default 100, $WILTON_ROUTER_MAX_HEADERS)")
    p.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="open connections per worker (default 1000, $WILTON_ROUTER_MAX_CONNECTIONS)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for --workers' children
    p.add_argument("--validate-and-exit", action="store_true", help="check settings, config and store, then exit")
    p.add_argument("--allow-unauthenticated", action="store_true", default=None,
                   help="serve a non-loopback address without WILTON_MASTER_KEY (anyone may spend)")
    return p


def build_app(settings: Any, *, store: Any = None, providers: Any = None) -> tuple[Any, Any, Any]:
    """Wire settings → store → ledger writer → service → ASGI app. Returns (app, service, ledger)."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Histogram,
        gc_collector,
        generate_latest,
        platform_collector,
        process_collector,
    )

    from wilton_core.access.gate import Gate
    from wilton_core.access.spend import LedgerTap
    from wilton_core.router.app import RouterApp
    from wilton_core.router.openapi import openapi_schema
    from wilton_core.router.service import RouterService
    from wilton_core.store import open_store
    from wilton_core.store.ledger_writer import LedgerWriter

    config = settings.stack_config()
    if store is None:
        store = open_store(settings.resolved_store_url())
        store.migrate()
    ledger = LedgerWriter(store, flush_interval_s=settings.ledger_flush_s, batch_size=settings.ledger_batch)
    registry = CollectorRegistry()
    process_collector.ProcessCollector(registry=registry)
    platform_collector.PlatformCollector(registry=registry)
    gc_collector.GCCollector(registry=registry)
    overhead = Histogram(
        "wilton_router_overhead_seconds",
        "Time the router adds to a request (total minus upstream time; to first byte for streams).",
        buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
        registry=registry,
    )
    # access (issue 14): the gate sees every ledger record (spend, TPM) on its way to the writer
    gate = Gate(models={m.id: m.is_local for m in config.models}, master_key=settings.master_key_value(),
                store=store, writer=ledger, redis_url=settings.redis_url, refresh_s=settings.key_refresh_s,
                replica=settings.replica_id)
    service = RouterService(config, store=store, ledger=LedgerTap(ledger, gate.observe), writer=ledger,
                            providers=providers,
                            replica=settings.replica_id, overhead_observer=overhead.observe,
                            probe_models=config.routing.probe_models,
                            capture_prompts=settings.capture_prompts)

    def metrics() -> tuple[bytes, str]:
        return generate_latest(registry), CONTENT_TYPE_LATEST

    app = RouterApp(service, metrics=metrics, openapi=openapi_schema, body_timeout_s=settings.router_body_timeout_s,
                    max_headers=settings.router_max_headers, gate=gate)
    return app, service, ledger


def quiet_client_loggers() -> None:
    # per-request INFO lines from HTTP clients cost time on the hot path and say nothing new
    for name in ("httpx", "httpcore", "google_genai", "google_genai.models", "openai", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _event_loop() -> str:
    # uvloop and httptools come with uvicorn[standard]; uvloop halves the loop's own cost per request
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def main(argv: Sequence[str] | None = None, *, prog: str = "wilton-router") -> int:
    args = _parser(prog).parse_args(argv)
    from wilton_core.settings import load_settings

    try:
        settings = load_settings(config=args.config, host=args.host, router_port=args.port,
                                 store_url=args.store_url, replica_id=args.replica_id,
                                 log_level=args.log_level, router_workers=args.workers,
                                 router_header_timeout_s=args.header_timeout,
                                 router_body_timeout_s=args.body_timeout, router_keep_alive_s=args.keep_alive,
                                 router_max_header_bytes=args.max_header_bytes, router_max_headers=args.max_headers,
                                 router_max_connections=args.max_connections,
                                 allow_unauthenticated=args.allow_unauthenticated)
        level = getattr(logging, settings.log_level.upper(), logging.INFO)
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        quiet_client_loggers()
        config = settings.stack_config()
    except ConfigError as e:
        print(f"wilton-router: {e}", file=sys.stderr)
        return 2
    from wilton_core.access.gate import exposure_error

    exposed = exposure_error(settings.host, settings.master_key is not None, settings.allow_unauthenticated)
    if exposed:
        print(f"wilton-router: {exposed}", file=sys.stderr)
        return 2
    try:
        from wilton_core.store import open_store

        store = open_store(settings.resolved_store_url())
        store.migrate()
    except StoreError as e:
        print(f"wilton-router: store unavailable: {e}", file=sys.stderr)
        return 3
    if args.validate_and_exit:
        usable = [m.id for m in config.models if m.is_configured()]
        print(f"ok: {len(config.models)} models ({len(usable)} configured: {', '.join(usable)}); "
              f"store {store.url}")
        store.close()
        return 0

    if settings.router_workers > 1:
        store.close()  # each worker opens its own
        return _run_workers(settings, argv)
    app, _service, _ledger = build_app(settings, store=store)
    return _run_fast(app, settings, config, store, reuse_port=args.reuse_port)


def _run_workers(settings: Any, argv: Sequence[str] | None) -> int:
    from wilton_core.router.workers import Supervisor, worker_argv

    if settings.router_port == 0:
        print("wilton-router: --workers needs a fixed --port (port 0 would give each worker its own)",
              file=sys.stderr)
        return 2
    base = list(sys.argv[1:] if argv is None else argv)
    log.info("router: %d workers on http://%s:%d", settings.router_workers, settings.host, settings.router_port)
    supervisor = Supervisor(lambda i: worker_argv(base, i, settings.replica_id), settings.router_workers)
    return supervisor.run()


def _run_fast(app: Any, settings: Any, config: Any, store: Any, *, reuse_port: bool = False) -> int:
    from wilton_core.router.server import limits_from, serve

    try:
        started = serve(app, host=settings.host, port=settings.router_port, limits=limits_from(settings),
                        max_body_bytes=config.routing.max_body_bytes, use_uvloop=_event_loop() == "uvloop",
                        reuse_port=reuse_port)
    except (OSError, RuntimeError) as e:  # bind failure, or the service refused to start
        log.error("router failed: %s", e)
        return 1
    finally:
        store.close()  # after the server's shutdown: the service flushed the ledger into it
    return 0 if started else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
