"""A tiny upstream that answers each POST path with fixed bytes (a recorded wire-format fixture)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from typing import Any


class ReplayUpstream:
    def __init__(self, routes: Mapping[str, tuple[bytes, bytes]]) -> None:
        self.routes = dict(routes)  # path -> (content type, body)
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        ctype, body = self.routes.get(scope["path"], (b"application/json", b'{"error": "no such path"}'))
        status = 200 if scope["path"] in self.routes else 404
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]})
        await send({"type": "http.response.body", "body": body})

    def start(self) -> ReplayUpstream:
        import uvicorn

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self, lifespan="off", access_log=False, log_config=None, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("replay upstream did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
