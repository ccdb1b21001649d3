"""The exporter process: a small threaded HTTP server with /metrics and /healthz.

Side effects happen in `start()` (bind, serve thread), never in `__init__`; port 0 binds a free
port, which tests read back from `.port`. The store is a constructor parameter.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from wilton_core.exporter.collector import StoreCollector
from wilton_core.exporter.families import ExportOptions

__all__ = ["ExporterService"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(self.server.registry))
        elif path in ("/healthz", "/readyz"):
            # liveness only: a store outage is reported as wilton_exporter_store_up 0, not here,
            # so Prometheus keeps scraping and the outage alert can fire
            body = json.dumps({"status": "ok", "service": "wilton-exporter"}).encode()
            self._send(200, "application/json", body)
        else:
            self._send(404, "application/json", b'{"error":"not found"}')

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape is noise; errors surface as metrics


class _Server(HTTPServer):
    # One serving thread on purpose: the store keeps one connection per thread, so a thread
    # per request would open (and for PostgreSQL, handshake) a connection on every scrape.
    # A scrape takes milliseconds, so /healthz never waits long behind one.
    registry: CollectorRegistry


class ExporterService:
    def __init__(
        self,
        store: Any,
        options: ExportOptions | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        registry: CollectorRegistry | None = None,
        collector: StoreCollector | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.requested_port = port
        self.registry = registry if registry is not None else CollectorRegistry()
        self.collector = collector or StoreCollector(store, options)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ExporterService is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        self.registry.register(self.collector)
        server = _Server((self.host, self.requested_port), _Handler)
        server.registry = self.registry
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="wilton-exporter-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.registry.unregister(self.collector)

    def __enter__(self) -> ExporterService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
