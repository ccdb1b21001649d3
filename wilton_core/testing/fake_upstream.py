"""One scriptable fake LLM server speaking OpenAI, Ollama, Gemini and Anthropic on one port.

Used by the provider contract tests, the end-to-end tests, and as the benchmark and demo
upstream (`--profile frontier` plays a slow, realistic API model). A raw ASGI app under
uvicorn (httptools, uvloop when installed) so it serves thousands of requests per second on
one core: no framework, orjson, replies rendered by `fake_wire`.

Endpoints:
    POST /v1/chat/completions                      OpenAI (JSON, or SSE with the usage chunk)
    GET  /v1/models                                OpenAI list (Anthropic list when anthropic-version is sent)
    POST /api/chat, GET /api/tags                  Ollama (NDJSON streaming by default)
    POST /v1beta/models/{m}:generateContent        Gemini; :streamGenerateContent?alt=sse streams
    GET  /v1beta/models                            Gemini list
    POST /v1/messages                              Anthropic (JSON, or SSE events)
    POST /v1/embeddings, POST /api/embed           OpenAI / Ollama embeddings (hash-derived unit vectors)
    POST /v1beta/models/{m}:batchEmbedContents     Gemini embeddings (the same vectors)
    POST /_fake/script   a script object, a list of them, or {"clear": true} (see fake_script)
    GET  /_fake/stats    request counts per model/path, the last request bodies, current scripts
    GET  /healthz

Answers are "[<model>] <last user message>" (plus " [images:N]" when images were sent), or a
call to the first tool when the request offers tools and its last message is not a tool result;
`FakeUpstream(answer=fn)` makes the text a function of (model, last user message) instead.

In process:
    with FakeUpstream().start() as fake:
        fake.script(model="m1", fail=[429], retry_after=1)
        ... base_url=fake.url + "/v1" ...
        fake.stats()["by_model"]["m1"]

CLI:
    python -m wilton_core.testing.fake_upstream --port 8090 --latency-ms 5 --name sim-frontier
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
import typer

from wilton_core.cli.entry import new_app
from wilton_core.router.asgi import Receive, Scope, Send
from wilton_core.testing.fake_script import PROFILES, Action, Script, ScriptBook
from wilton_core.testing.fake_wire import (
    CONTENT_TYPES,
    build_reply,
    error_body,
    malformed_body,
    parse_request,
    render_complete,
    render_stream,
)

__all__ = ["FakeApp", "FakeUpstream", "main"]

log = logging.getLogger("wilton.fake_upstream")


_SECRET_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key"})
_JSON = b"application/json"
_MIN_SLEEP_S = 0.002
# (model, last user message) -> the answer text, or None for the default echo. A scripted `reply`
# wins. Lets a simulation make a model right or wrong per prompt (bench/learning_curve.py).
Answer = Callable[[str, str], "str | None"]  # sleeping less than this costs more in timer overhead than it simulates


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)


def _abort(send: Send) -> bool:
    """Drop the TCP connection without a reply; ASGI has no word for it, uvicorn's cycle holds the transport."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True


class FakeApp:
    """The ASGI application; all state lives in the `ScriptBook` so tests can script it from any thread."""

    def __init__(self, book: ScriptBook, *, models: Iterable[str] = ("fake-model",), api_key: str | None = None,
                 seed: int = 0, stopping: threading.Event | None = None, name: str = "fake",
                 answer: Answer | None = None) -> None:
        self.book = book
        self.answer = answer
        self.models = list(models)
        self.api_key = api_key
        self.name = name
        self.rng = random.Random(seed)
        self.stopping = stopping or threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        path: str = scope["path"]
        method: str = scope["method"]
        headers = dict(scope["headers"])
        if method == "POST":
            raw = await _read_body(receive)
            if path == "/v1/chat/completions":
                return await self._llm(send, receive, "openai", path, raw, headers)
            if path == "/v1/messages":
                return await self._llm(send, receive, "anthropic", path, raw, headers)
            if path == "/api/chat":
                return await self._llm(send, receive, "ollama", path, raw, headers)
            if path.startswith(("/v1beta/models/", "/v1/models/")) and ":" in path:
                model, _, verb = path.split("/models/", 1)[1].rpartition(":")
                if verb == "batchEmbedContents":
                    return await self._embed(send, "gemini", path, raw, model=model)
                if verb in ("generateContent", "streamGenerateContent"):
                    q = parse_qs(scope.get("query_string", b"").decode())
                    return await self._llm(send, receive, "gemini", path, raw, headers, model=model,
                                           stream=verb == "streamGenerateContent", query=q)
            if path in ("/v1/embeddings", "/api/embed"):
                return await self._embed(send, "openai" if path == "/v1/embeddings" else "ollama", path, raw)
            if path == "/_fake/script":
                return await self._control(send, raw)
        elif method == "GET":
            if path in ("/v1/models", "/api/tags", "/v1beta/models"):
                return await self._list(send, path, headers)
            if path == "/_fake/stats":
                return await _respond(send, 200, orjson.dumps(self.book.stats()))
            if path == "/healthz":
                return await _respond(send, 200, orjson.dumps({"status": "ok", "name": self.name}))
        await _respond(send, 404, orjson.dumps({"error": {"message": f"no route {method} {path}", "code": 404}}))

    # -- control --------------------------------------------------------------------------

    async def _control(self, send: Send, raw: bytes) -> None:
        try:
            data = orjson.loads(raw)
            if isinstance(data, dict) and data.get("clear"):
                self.book.clear()
            else:
                for item in data if isinstance(data, list) else [data]:
                    self.book.set(Script.from_json(item))
        except (ValueError, TypeError) as e:
            return await _respond(send, 400, orjson.dumps({"error": str(e)}))
        await _respond(send, 200, orjson.dumps({"ok": True}))

    async def _list(self, send: Send, path: str, headers: dict[bytes, bytes]) -> None:
        names = sorted(set(self.models) | self.book.models_seen)
        if path == "/api/tags":
            body: dict[str, Any] = {"models": [{"name": n, "model": n, "size": 0, "digest": "0" * 12,
                                                "details": {"family": "fake"}} for n in names]}
        elif path == "/v1beta/models":
            body = {"models": [{"name": f"models/{n}", "displayName": n,
                                "supportedGenerationMethods": ["generateContent"]} for n in names]}
        elif b"anthropic-version" in headers:
            body = {"data": [{"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"}
                             for n in names], "has_more": False}
        else:
            body = {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": self.name}
                                               for n in names]}
        await _respond(send, 200, orjson.dumps(body))

    # -- the LLM endpoints ------------------------------------------------------------------

    def _authorized(self, wire: str, headers: dict[bytes, bytes], query: dict[str, list[str]]) -> bool:
        if not self.api_key:
            return True
        key = self.api_key.encode()
        if wire in ("openai", "ollama"):  # Ollama behind a proxy or ollama.com: a Bearer token
            return headers.get(b"authorization") == b"Bearer " + key
        if wire == "anthropic":
            return headers.get(b"x-api-key") == key
        return headers.get(b"x-goog-api-key") == key or query.get("key", [""])[0] == self.api_key

    async def _llm(self, send: Send, receive: Receive, wire: str, path: str, raw: bytes,
                   headers: dict[bytes, bytes], *,
                   model: str = "", stream: bool = False, query: dict[str, list[str]] | None = None) -> None:
        query = query or {}
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
            req = parse_request(wire, body, model=model, stream=stream)
        except (ValueError, TypeError, AttributeError) as e:
            return await _respond(send, 400, error_body(wire, 400, f"invalid request: {e}"))
        record = {
            "path": path, "wire": wire, "model": req.model, "stream": req.stream, "body": body, "t": time.time(),
            "auth": any(h in headers for h in _SECRET_HEADERS) or "key" in query,
            "headers": {k.decode(): ("<redacted>" if k in _SECRET_HEADERS else v.decode("latin-1"))
                        for k, v in headers.items()},
        }
        action = self.book.next_action(req.model, path, record, self.rng.random())
        if action.delay_s:
            await asyncio.sleep(action.delay_s)
        if action.kind == "reset":
            if _abort(send):
                await asyncio.sleep(0)  # let uvicorn see the disconnect before we return
                return
            return await _respond(send, 502, b"")
        if action.kind == "status":  # scripted failures win over the key check, so tests can fake any 401
            return await self._error(send, wire, action)
        if not self._authorized(wire, headers, query):
            return await _respond(send, 401, error_body(wire, 401, "invalid api key"))
        if action.kind == "malformed" and not req.stream:
            return await _respond(send, 200, malformed_body(wire), CONTENT_TYPES[(wire, False)])
        if action.kind == "hostile":
            return await self._hostile(send, wire, req.model, req.stream, action)
        text = action.reply
        if text is None and self.answer is not None:
            text = self.answer(req.model, req.last_user)
        reply = build_reply(req, reply=text, reply_words=action.reply_words, tool_call=action.tool_call)
        if not req.stream:
            total = action.ttft_s + (reply.completion_tokens / action.tokens_per_s if action.tokens_per_s else 0.0)
            if total >= _MIN_SLEEP_S:
                await asyncio.sleep(total)
            return await _respond(send, 200, render_complete(req, reply), CONTENT_TYPES[(wire, False)])
        await self._stream(send, receive, wire, action, *render_stream(req, reply))

    async def _embed(self, send: Send, wire: str, path: str, raw: bytes, model: str = "") -> None:
        """OpenAI /v1/embeddings, Ollama /api/embed or Gemini :batchEmbedContents: deterministic unit
        vectors (a hash of model and text, `dimensions` long, 8 by default); scripted failures apply."""
        try:
            body = orjson.loads(raw)
            if wire == "gemini":
                reqs = body["requests"]
                texts = ["".join(p.get("text", "") for p in r["content"]["parts"]) for r in reqs]
                dims = int((reqs[0].get("outputDimensionality") if reqs else None) or 8)
            else:
                model = str(body["model"])
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                dims = int(body.get("dimensions") or 8)
                texts = [str(t) for t in inputs]
        except (ValueError, TypeError, KeyError) as e:
            return await _respond(send, 400, error_body(wire, 400, f"invalid request: {e}"))
        record = {"path": path, "wire": wire, "model": model, "stream": False, "body": body, "t": time.time(),
                  "auth": False, "headers": {}}
        action = self.book.next_action(model, path, record, self.rng.random())
        if action.kind == "status":
            return await self._error(send, wire, action)
        vectors = [_fake_vector(model, t, dims) for t in texts]
        tokens = sum(max(1, (len(t) + 3) // 4) for t in texts)
        if wire == "gemini":
            out: dict[str, Any] = {"embeddings": [{"values": v} for v in vectors]}
        elif wire == "ollama":
            out = {"model": model, "embeddings": vectors, "total_duration": 1000, "prompt_eval_count": tokens}
        else:
            out = {"object": "list", "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                   "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}
        await _respond(send, 200, orjson.dumps(out))

    async def _error(self, send: Send, wire: str, action: Action) -> None:
        status = action.status
        message = action.error_message or {
            400: "bad request", 401: "invalid api key", 403: "forbidden", 404: "model not found",
            429: "rate limit exceeded", 500: "internal server error", 503: "service unavailable",
        }.get(status, f"scripted error {status}")
        extra = []
        if action.retry_after is not None and status in (429, 503):
            extra.append((b"retry-after", str(action.retry_after).encode()))
        await _respond(send, status, error_body(wire, status, message), extra_headers=extra)

    async def _stream(self, send: Send, receive: Receive, wire: str, action: Action,
                      head: list[bytes], toks: list[bytes], tail: list[bytes]) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPES[(wire, True)]), (b"cache-control", b"no-cache")]})
        if action.ttft_s >= _MIN_SLEEP_S:
            await asyncio.sleep(action.ttft_s)
        if action.kind == "malformed":
            bad = b"{broken json\n" if wire == "ollama" else b"data: {broken json\n\n"
            head, toks, tail = head[:1], [bad], []
        special = action.stall_after is not None or action.die_after is not None
        if not special and not action.tokens_per_s:
            # The common (benchmark) case: one write is what a fast upstream looks like on the wire.
            await send({"type": "http.response.body", "body": b"".join(head + toks + tail), "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        per_token = 1.0 / action.tokens_per_s if action.tokens_per_s else 0.0
        owed = 0.0
        n_tok = len(head)
        for i, frame in enumerate(head + toks + tail):
            if action.die_after is not None and i >= action.die_after:
                if _abort(send):
                    await asyncio.sleep(0)
                    return
                raise ConnectionAbortedError("scripted stream death")  # uvicorn closes the socket mid-body
            if action.stall_after is not None and i >= action.stall_after:
                # Hang until the client gives up (receive() reports the disconnect) or we stop.
                gone = asyncio.ensure_future(receive())
                while not self.stopping.is_set() and not gone.done():
                    await asyncio.wait({gone}, timeout=0.05)
                gone.cancel()
                _abort(send)
                await asyncio.sleep(0)
                return
            if per_token and n_tok <= i < n_tok + len(toks):
                owed += per_token
                if owed >= _MIN_SLEEP_S:
                    await asyncio.sleep(owed)
                    owed = 0.0
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


    async def _hostile(self, send: Send, wire: str, model: str, stream: bool, action: Action) -> None:
        """A 200 the client must not trust (see the hostile keys in fake_script), sent chunked.

        Bytes are counted only while the client is still there, into stats()["sent_bytes"], so a
        test can tell that a reply was cut short by the client rather than read to the end.
        """
        cycle = getattr(send, "__self__", None)
        sent = 0

        def gone() -> bool:
            return bool(getattr(cycle, "disconnected", False)) or self.stopping.is_set()

        async def put(data: bytes) -> bool:
            nonlocal sent
            if gone():
                return False
            await send({"type": "http.response.body", "body": data, "more_body": True})
            if gone():  # uvicorn drops writes to a closed connection silently
                return False
            sent += len(data)
            return True

        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPES[(wire, stream)]), (b"cache-control", b"no-cache")]})
        try:
            if action.huge_bytes is not None:
                sse = stream and wire != "ollama"
                head, tail = (b'data: {"x": "', b'"}\n\n') if sse else (b'{"x": "', b'"}\n')
                filler = b"a" * _HUGE_CHUNK
                left = action.huge_bytes - len(head) - len(tail)
                if not await put(head):
                    return
                while left > 0:
                    if not await put(filler[:left]):
                        return
                    left -= _HUGE_CHUNK
                    await asyncio.sleep(0)  # let the disconnect, if any, be seen
                if not await put(tail):
                    return
            elif action.raw_reply is not None and not stream:
                data = action.raw_reply.encode()
                if action.cut_after_bytes is not None:
                    await put(data[:action.cut_after_bytes])
                    _abort(send)  # no terminating chunk: a truncated chunked body
                    await asyncio.sleep(0)
                    return
                if not await put(data):
                    return
            else:
                for frame in action.raw_frames or ():
                    if not await put(frame.encode()):
                        return
                if action.tail_frame is not None:
                    tail_frame = action.tail_frame.encode()
                    until = time.monotonic() + _TAIL_MAX_S  # bounded even if the client never leaves
                    while time.monotonic() < until:
                        await asyncio.sleep(action.tail_every_s)
                        if not await put(tail_frame):
                            return
                    _abort(send)
                    await asyncio.sleep(0)
                    return
            await send({"type": "http.response.body", "body": b""})
        finally:
            self.book.note_sent(model, sent)


_HUGE_CHUNK = 64 * 1024
_TAIL_MAX_S = 60.0


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = _JSON,
                   extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra_headers:
        headers += extra_headers
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _fake_vector(model: str, text: str, dims: int) -> list[float]:
    import hashlib

    raw = hashlib.sha256(f"{model}\0{text}".encode()).digest() * (dims // 32 + 1)
    v = [b - 127.5 for b in raw[:dims]]
    norm = sum(x * x for x in v) ** 0.5 or 1.0
    return [x / norm for x in v]


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class FakeUpstream:
    """The fake server in a background thread (port 0 by default); scripts apply immediately."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, default: Script | None = None,
                 models: Iterable[str] = ("fake-model",), api_key: str | None = None, seed: int = 0,
                 name: str = "fake", answer: Answer | None = None) -> None:
        self.host = host
        self.port = port
        self.book = ScriptBook(default)
        self._stopping = threading.Event()
        self.app = FakeApp(self.book, models=models, api_key=api_key, seed=seed, stopping=self._stopping,
                           name=name, answer=answer)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> FakeUpstream:
        import uvicorn  # lazy: only the process that serves needs it

        self._sock = _bind(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, http="httptools", loop="auto", lifespan="off", access_log=False,
                                log_config=None, log_level="warning", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"fake-upstream:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fake upstream did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> FakeUpstream:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, model: str = "*", **kw: Any) -> None:
        """Same keys as POST /_fake/script, e.g. script("m1", fail=[429], retry_after=1)."""
        self.book.set(Script.from_json({"model": model, **kw}))

    def clear(self) -> None:
        self.book.clear()

    def stats(self) -> dict[str, Any]:
        return self.book.stats()

    def last_body(self, model: str | None = None) -> dict[str, Any]:
        """The body of the most recent request (for `model` if given)."""
        for rec in reversed(self.book.stats()["last"]):
            if model is None or rec["model"] == model:
                body: dict[str, Any] = rec["body"]
                return body
        raise LookupError(f"no request recorded for model {model!r}")


cli = new_app()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0: any free one, printed on the first line)")] = 8090,
    name: Annotated[str, typer.Option(help="served model name (listed by the /models endpoints)")] = "fake",
    models: Annotated[str, typer.Option(help="more comma-separated model names to list")] = "",
    profile: Annotated[str | None, typer.Option(
        help=f"latency shape: {', '.join(sorted(PROFILES))} (lognormal TTFT + tokens/s)")] = None,
    latency_ms: Annotated[float, typer.Option(help="fixed delay before every reply")] = 0.0,
    ttft_ms: Annotated[float | None, typer.Option(help="time to first token for streams")] = None,
    tokens_per_s: Annotated[float | None, typer.Option(help="stream speed after the first token")] = None,
    reply_words: Annotated[int | None, typer.Option(help="pad answers to this many words")] = None,
    status: Annotated[int | None, typer.Option(help="answer every request with this status")] = None,
    flap: Annotated[int | None, typer.Option(help="alternate up/down every N requests")] = None,
    script: Annotated[str | None, typer.Option(help="JSON script object or list (same as POST /_fake/script)")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        help="NAME of an env var holding the key clients must send")] = None,
    seed: Annotated[int, typer.Option(help="seed of the latency draws")] = 0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> int:
    """Scriptable fake LLM upstream (OpenAI, Ollama, Gemini, Anthropic wire formats).

    Exit codes: 0 clean stop, 2 bad flags (an unknown profile, a script that is not JSON, an unset --api-key-env).
    """
    import uvicorn

    if profile is not None and profile not in PROFILES:
        return _fail(f"--profile {profile}: use one of {', '.join(sorted(PROFILES))}")
    default = Script(model="*", latency_ms=latency_ms, ttft_ms=ttft_ms, tokens_per_s=tokens_per_s,
                     reply_words=reply_words, profile=profile, status=status, flap=flap)
    book = ScriptBook(default)
    if script:
        try:
            data = orjson.loads(script)
            for item in data if isinstance(data, list) else [data]:
                book.set(Script.from_json(item))
        except (orjson.JSONDecodeError, TypeError, ValueError) as e:
            return _fail(f"--script: {e}")
    api_key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        return _fail(f"--api-key-env {api_key_env}: that environment variable is not set")
    served = [name, *[m for m in models.split(",") if m]]
    app = FakeApp(book, models=served, api_key=api_key, seed=seed, name=name)
    sock = _bind(host, port)
    print(f"fake upstream '{name}' on http://{host}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, http="httptools", loop="auto", lifespan="off", access_log=False,
                            log_level=log_level, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _fail(message: str) -> int:
    print(f"wilton-fake-upstream: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    from wilton_core.cli.entry import run_app

    return run_app(cli, argv, "wilton-fake-upstream")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
