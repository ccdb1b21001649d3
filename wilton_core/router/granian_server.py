"""Serve the router's ASGI app with granian (a Rust HTTP server, hyper underneath).

granian owns the sockets and the processes: `--workers N` processes share the port, a worker
that dies is respawned, SIGTERM stops accepting, lets in-flight requests finish and runs each
worker's ASGI lifespan shutdown (RouterService.stop flushes its ledger). The server limits come
from the settings:
- header read timeout: the request line and headers must arrive within it, and an idle
  keep-alive connection is closed after it (hyper times the wait for the next request's head);
- read buffer = max header bytes: a longer request head is answered 431; hyper also refuses more
  than 100 headers (431) and the app a lower `router_max_headers`;
- backpressure = max connections: each worker serves that many connections at once; more wait
  in the listen backlog (never accepted, so they cost the router nothing) until one is released;
- the body deadline is the app's (`RouterApp(body_timeout_s=...)`, 408): granian has none.

Each worker is a full router with its own ledger replica id, `<replica>-w<i>`: `i` is the first
worker slot whose lock file is free, so a respawned worker takes over the slot (and the replica
id) of the one that died, whose lock the kernel released with its process.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["app_factory", "claim_slot", "run"]

log = logging.getLogger("wilton.router")

# the parent hands the workers their settings through the environment (they are new processes)
_SLOT_DIR_ENV = "WILTON_ROUTER_SLOT_DIR"
_PARENT_ENV = "WILTON_ROUTER_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1
# SIGTERM: a worker stops accepting and finishes what is in flight; one still busy after this
# is killed (a stream longer than this loses its ledger row; shorter ones are all recorded)
_GRACEFUL_S = 30
_held: list[IO[bytes]] = []  # the slot lock lives as long as the worker process


def claim_slot(directory: Path) -> int:
    """The lowest free worker slot in `directory` (a lock file each), held until this process ends."""
    i = 0
    while True:
        fh = open(directory / f"worker-{i}.lock", "ab")  # noqa: SIM115 — kept open on purpose
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            i += 1
            continue
        _held.append(fh)
        return i


def stop_with_parent(parent_pid: int) -> None:
    """SIGTERM this worker when the supervisor dies (even by kill -9): drain, flush, exit, never orphaned.

    A watchdog thread backs the signal up: a SIGTERM that lands while granian is still starting
    the worker can be lost, so a worker whose parent is gone exits after the graceful window.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        time.sleep(_GRACEFUL_S)
        os._exit(1)

    threading.Thread(target=watch, name="wilton-parent-watch", daemon=True).start()


def app_factory() -> Any:
    """granian's factory target, called once in each worker: settings from the env → the ASGI app."""
    from wilton_core.router.cli import build_app, quiet_client_loggers
    from wilton_core.settings import load_settings

    parent = os.environ.get(_PARENT_ENV)
    if parent and parent.isdigit():
        stop_with_parent(int(parent))
    settings = load_settings()
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_client_loggers()
    overrides: dict[str, Any] = {}
    slot_dir = os.environ.get(_SLOT_DIR_ENV)
    if slot_dir and settings.router_workers > 1:
        overrides["replica_id"] = f"{settings.replica_id}-w{claim_slot(Path(slot_dir))}"
    if overrides:
        settings = load_settings(**overrides)
    app, _service, _ledger = build_app(settings)
    return app


def _settings_env(settings: Any) -> dict[str, str]:
    """The resolved settings (flags included) as WILTON_* variables, for the workers' load_settings()."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"WILTON_{name.upper()}"] = str(value)
    env["WILTON_STORE_URL"] = settings.resolved_store_url()
    return env


def run(settings: Any) -> int:
    """Run granian in this process (the supervisor) until SIGTERM/SIGINT; 0 on a clean stop."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    with tempfile.TemporaryDirectory(prefix="wilton-router-") as slots:
        os.environ.update(_settings_env(settings))
        os.environ[_SLOT_DIR_ENV] = slots
        os.environ[_PARENT_ENV] = str(os.getpid())
        level = settings.log_level.lower()
        server = Server(
            "wilton_core.router.granian_server:app_factory", factory=True, interface=Interfaces.ASGI,
            address=settings.host, port=settings.router_port, workers=settings.router_workers,
            http=HTTPModes.http1, websockets=False, loop=Loops.auto,
            backlog=max(128, settings.router_max_connections),
            backpressure=settings.router_max_connections,
            http1_settings=HTTP1Settings(
                header_read_timeout=max(1, int(settings.router_header_timeout_s * 1000)),
                max_buffer_size=max(8192, settings.router_max_header_bytes)),
            log_level=LogLevels(level) if level in {lv.value for lv in LogLevels} else LogLevels.info,
            log_access=False, respawn_failed_workers=True, respawn_interval=0.5,
            workers_kill_timeout=_GRACEFUL_S,
        )
        try:
            server.serve()
        except SystemExit as e:
            return int(e.code or 0) if isinstance(e.code, int) else 1
    return 0
