"""`wilton-router`: thin CLI → settings → RouterService → HTTP server (uvicorn or our own).

`--server` (or $WILTON_ROUTER_SERVER) picks the HTTP server: `fast` (router/server.py, one
socket write per response) or `uvicorn`; both run the same ASGI app.

Exit codes: 0 clean stop, 2 bad config/settings, 3 store unreachable.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from wilton_core.errors import ConfigError, StoreError

__all__ = ["build_app", "main"]

log = logging.getLogger("wilton.router")

SERVERS = ("fast", "uvicorn")
DEFAULT_SERVER = "fast"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wilton-router", description="OpenAI-compatible, phi-balanced LLM router")
    p.add_argument("--config", help="TOML config file (default: $WILTON_CONFIG, else embedded defaults)")
    p.add_argument("--host", help="bind address (default 127.0.0.1, $WILTON_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080, $WILTON_ROUTER_PORT)")
    p.add_argument("--store-url", help="sqlite:///path or postgresql://... ($WILTON_STORE_URL)")
    p.add_argument("--replica-id", help="name of this replica in the ledger (default: hostname)")
    p.add_argument("--log-level", default=None)
    p.add_argument("--server", choices=SERVERS, default=None,
                   help=f"HTTP server (default {DEFAULT_SERVER}, $WILTON_ROUTER_SERVER)")
    p.add_argument("--workers", type=int, default=None,
                   help="router processes sharing the port (default 1, $WILTON_ROUTER_WORKERS; fast server only)")
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
    service = RouterService(config, store=store, ledger=LedgerTap(ledger, gate.observe), providers=providers,
                            replica=settings.replica_id, overhead_observer=overhead.observe,
                            probe_models=config.routing.probe_models,
                            capture_prompts=settings.capture_prompts)

    def metrics() -> tuple[bytes, str]:
        return generate_latest(registry), CONTENT_TYPE_LATEST

    app = RouterApp(service, metrics=metrics, openapi=openapi_schema, gate=gate)
    return app, service, ledger


def quiet_client_loggers() -> None:
    # per-request INFO lines from HTTP clients cost time on the hot path and say nothing new
    for name in ("httpx", "httpcore", "google_genai", "google_genai.models", "openai", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _graceful_server_class() -> Any:
    import signal

    import uvicorn

    class _GracefulServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its shutdown, killing the process with -15; we return 0.

        Shutdown itself (drain connections, lifespan shutdown → ledger flush) is uvicorn's own.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            sigs = (signal.SIGINT, signal.SIGTERM)
            previous = {s: signal.signal(s, self.handle_exit) for s in sigs}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    return _GracefulServer


def make_server(config: Any) -> Any:
    """A uvicorn server that stops cleanly on SIGTERM/SIGINT (see `_graceful_server_class`)."""
    return _graceful_server_class()(config)


def _event_loop() -> str:
    # uvloop and httptools come with uvicorn[standard]; uvloop halves the loop's own cost per
    # request. proxy_headers stays off: X-Forwarded-For must not be trusted by default, and the
    # middleware costs a wrapper call per request.
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from wilton_core.settings import load_settings

    try:
        settings = load_settings(config=args.config, host=args.host, router_port=args.port,
                                 store_url=args.store_url, replica_id=args.replica_id,
                                 log_level=args.log_level, router_workers=args.workers,
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

    server_kind = args.server or os.environ.get("WILTON_ROUTER_SERVER") or DEFAULT_SERVER
    if server_kind not in SERVERS:
        print(f"wilton-router: WILTON_ROUTER_SERVER must be one of {', '.join(SERVERS)}, not {server_kind!r}",
              file=sys.stderr)
        store.close()
        return 2
    if settings.router_workers > 1:
        store.close()  # each worker opens its own
        return _run_workers(settings, server_kind, argv)
    app, _service, _ledger = build_app(settings, store=store)
    if server_kind == "fast":
        return _run_fast(app, settings, config, store, reuse_port=args.reuse_port)
    import uvicorn

    uv_config = uvicorn.Config(app, host=settings.host, port=settings.router_port, log_level=settings.log_level,
                               access_log=False, lifespan="on", http="httptools", loop=_event_loop(),
                               proxy_headers=False, server_header=False, timeout_graceful_shutdown=10)
    server = make_server(uv_config)
    try:
        server.run()  # lifespan shutdown stops the service, which flushes the ledger
    finally:
        store.close()
    return 0 if server.started else 1


def _run_workers(settings: Any, server_kind: str, argv: Sequence[str] | None) -> int:
    from wilton_core.router.workers import Supervisor, worker_argv

    if server_kind != "fast":
        print("wilton-router: --workers needs the fast server (--server fast)", file=sys.stderr)
        return 2
    if settings.router_port == 0:
        print("wilton-router: --workers needs a fixed --port (port 0 would give each worker its own)",
              file=sys.stderr)
        return 2
    base = list(sys.argv[1:] if argv is None else argv)
    log.info("router: %d workers on http://%s:%d", settings.router_workers, settings.host, settings.router_port)
    supervisor = Supervisor(lambda i: worker_argv(base, i, settings.replica_id), settings.router_workers)
    return supervisor.run()


def _run_fast(app: Any, settings: Any, config: Any, store: Any, *, reuse_port: bool = False) -> int:
    from wilton_core.router.server import serve

    try:
        started = serve(app, host=settings.host, port=settings.router_port,
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
