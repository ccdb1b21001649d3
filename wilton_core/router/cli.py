"""`wilton-router`: thin CLI → settings → RouterService → ASGI app → HTTP server.

The HTTP server is our own (router/server.py): measured against uvicorn and granian it is the
fastest at the load a router sees and passes the hostile-client suite (docs/benchmarks.md, "HTTP
server decision"); it enforces the server limits from the settings (docs/reliability.md "Server
limits").

Exit codes: 0 clean stop, 1 cannot serve, 2 bad flags/config/settings, 3 store unreachable.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wilton_core.cli.entry import new_app
from wilton_core.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from wilton_core.config import StackConfig
    from wilton_core.providers.base import Provider
    from wilton_core.router.app import RouterApp
    from wilton_core.router.service import RouterService
    from wilton_core.settings import Settings
    from wilton_core.store.ledger_writer import LedgerWriter
    from wilton_core.store.sql import SqlStore

__all__ = ["app", "build_app", "main", "run"]

log = logging.getLogger("wilton.router")



app = new_app()

_S = "S"  # metavar of the durations in seconds
_N = "N"


@app.command()
def serve(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option(help="TOML config file (default: $WILTON_CONFIG, else embedded defaults)")] = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1, $WILTON_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8080, $WILTON_ROUTER_PORT)")] = None,
    store_url: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://... ($WILTON_STORE_URL)")] = None,
    replica_id: Annotated[str | None, typer.Option(help="name of this replica in the ledger (default: hostname)")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning ($WILTON_LOG_LEVEL, default info)")] = None,
    workers: Annotated[int | None, typer.Option(
        help="router processes sharing the port (default 1, $WILTON_ROUTER_WORKERS)")] = None,
    header_timeout: Annotated[float | None, typer.Option(metavar=_S, help=(
        "seconds to receive a request's line and headers (default 10, $WILTON_ROUTER_HEADER_TIMEOUT_S)"))] = None,
    body_timeout: Annotated[float | None, typer.Option(metavar=_S, help=(
        "seconds to receive a request's body; for a streamed (chunked) upload, the longest silence "
        "between two chunks (default 30, $WILTON_ROUTER_BODY_TIMEOUT_S)"))] = None,
    keep_alive: Annotated[float | None, typer.Option(metavar=_S, help=(
        "an idle connection is closed after (default 5, $WILTON_ROUTER_KEEP_ALIVE_S)"))] = None,
    max_header_bytes: Annotated[int | None, typer.Option(metavar=_N, help=(
        "request line + headers, above it 431 (default 16384, $WILTON_ROUTER_MAX_HEADER_BYTES)"))] = None,
    max_headers: Annotated[int | None, typer.Option(metavar=_N, help=(
        "request header count, above it 431 (default 100, $WILTON_ROUTER_MAX_HEADERS)"))] = None,
    max_connections: Annotated[int | None, typer.Option(metavar=_N, help=(
        "open connections per worker (default 1000, $WILTON_ROUTER_MAX_CONNECTIONS)"))] = None,
    # set on --workers' children: they share the parent's port
    reuse_port: Annotated[bool, typer.Option("--reuse-port", hidden=True)] = False,
    validate_and_exit: Annotated[bool, typer.Option(
        "--validate-and-exit", help="check settings, config and store, then exit")] = False,
    allow_unauthenticated: Annotated[bool | None, typer.Option(
        "--allow-unauthenticated", help="serve a non-loopback address without WILTON_MASTER_KEY (anyone may spend)")] = None,
) -> int:
    """OpenAI-compatible, phi-balanced LLM router, in the foreground.

    Exit codes: 0 clean stop, 1 cannot serve (port taken), 2 bad flags, settings or config,
    3 store unreachable.
    """
    from wilton_core.settings import load_settings

    try:
        settings = load_settings(config=config, host=host, router_port=port, store_url=store_url,
                                 replica_id=replica_id, log_level=log_level, router_workers=workers,
                                 router_header_timeout_s=header_timeout, router_body_timeout_s=body_timeout,
                                 router_keep_alive_s=keep_alive, router_max_header_bytes=max_header_bytes,
                                 router_max_headers=max_headers, router_max_connections=max_connections,
                                 allow_unauthenticated=allow_unauthenticated)
    except ConfigError as e:
        return _fail(str(e), 2)
    return run(settings, validate_and_exit=validate_and_exit, reuse_port=reuse_port, worker_flags=_flags(ctx.params))


def _fail(message: str, code: int) -> int:
    print(f"wilton-router: {message}", file=sys.stderr)
    return code


def build_app(settings: Settings, *, store: SqlStore | None = None,
              providers: Mapping[str, Provider] | None = None) -> tuple[RouterApp, RouterService, LedgerWriter]:
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
    from wilton_core.router.shadow import attach_shadow
    from wilton_core.store import open_store
    from wilton_core.store.ledger_writer import LedgerWriter

    config = settings.stack_config()
    if store is None:
        store = open_store(settings.resolved_store_url())
        store.migrate()
    if providers is None:  # built here, where the settings are: which HTTP client serves the upstreams
        from wilton_core.providers.factory import make_provider

        providers = {m.id: make_provider(m, routing=config.routing, upstream_http=settings.upstream_http)
                     for m in config.models}
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
    # issue 16: opt-in; the hourly cap is split across the processes of one `--workers N` router
    attach_shadow(service, workers=max(settings.router_workers, settings.router_siblings))

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
    from wilton_core.cli.entry import run_app

    return run_app(app, argv, prog)


def _flags(params: Mapping[str, Any]) -> list[str]:
    """The command line of the flags given (their parsed values), for --workers to hand on."""
    out: list[str] = []
    for name, value in params.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        out += [flag] if value is True else [flag, str(value)]
    return out


def run(settings: Settings, *, validate_and_exit: bool = False, reuse_port: bool = False,
        worker_flags: Sequence[str] = ()) -> int:
    """Settings → store → service → server; the process's exit code."""
    try:
        level = getattr(logging, settings.log_level.upper(), logging.INFO)
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        quiet_client_loggers()
        config = settings.stack_config()
    except ConfigError as e:
        return _fail(str(e), 2)
    from wilton_core.access.gate import exposure_error

    exposed = exposure_error(settings.host, settings.master_key is not None, settings.allow_unauthenticated)
    if exposed:
        return _fail(exposed, 2)
    try:
        from wilton_core.store import open_store

        store = open_store(settings.resolved_store_url())
        store.migrate()
    except StoreError as e:
        return _fail(f"store unavailable: {e}", 3)
    if validate_and_exit:
        usable = [m.id for m in config.models if m.is_configured()]
        print(f"ok: {len(config.models)} models ({len(usable)} configured: {', '.join(usable)}); "
              f"store {store.url}")
        store.close()
        return 0

    if settings.router_workers > 1:
        store.close()  # each worker opens its own
        return _run_workers(settings, list(worker_flags))
    app_, _service, _ledger = build_app(settings, store=store)
    return _run_fast(app_, settings, config, store, reuse_port=reuse_port)


def _run_workers(settings: Settings, base: list[str]) -> int:
    from wilton_core.router.workers import Supervisor, worker_argv

    if settings.router_port == 0:
        return _fail("--workers needs a fixed --port (port 0 would give each worker its own)", 2)
    log.info("router: %d workers on http://%s:%d", settings.router_workers, settings.host, settings.router_port)
    # each worker learns how many share the port: per-process caps (shadow judging's budget) split N ways
    env = {**os.environ, "WILTON_ROUTER_SIBLINGS": str(settings.router_workers)}
    supervisor = Supervisor(lambda i: worker_argv(base, i, settings.replica_id), settings.router_workers, env=env)
    return supervisor.run()


def _run_fast(app: RouterApp, settings: Settings, config: StackConfig, store: SqlStore, *,
              reuse_port: bool = False) -> int:
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
