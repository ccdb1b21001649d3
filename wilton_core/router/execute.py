"""Run a decided request down its chain (fallback.py) and record what happened (recorder.py).

Returns typed outcomes (results.py); rendering them as bytes and headers is the HTTP layer's job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from wilton_core.access.caller import Caller
from wilton_core.errors import (
    NoHealthyModelError,
    ProviderError,
    RequestError,
    UnavailableError,
    UnknownModelError,
)
from wilton_core.providers.base import Embedder, Embeddings
from wilton_core.router.fallback import Attempt, FallbackExecutor, ModelRuntime, StreamStart, aclose_quietly
from wilton_core.router.recorder import Recorder
from wilton_core.router.results import (
    ChatOutcome,
    ChunkStream,
    EmbedResult,
    Route,
    RoutingFacts,
    StreamFailure,
)
from wilton_core.router.state import RouterState
from wilton_core.types import Usage

__all__ = ["Execution"]

log = logging.getLogger("wilton.router")


def _facts(route: Route, rt: ModelRuntime, attempts: list[Attempt], overhead_s: float) -> RoutingFacts:
    return RoutingFacts(route.request_id, rt.cfg, route.intent, route.difficulty, tuple(attempts), overhead_s)


class Execution:
    def __init__(self, state: RouterState, executor: FallbackExecutor, recorder: Recorder,
                 overhead_observer: Callable[[float], None] | None = None) -> None:
        self._state = state
        self.executor = executor
        self._recorder = recorder
        self._observe_overhead = overhead_observer

    # ---- chat ----------------------------------------------------------------------------------

    async def complete(self, body: dict[str, Any], route: Route) -> ChatOutcome:
        try:
            return await self._complete(body, route)
        except NoHealthyModelError as err:
            self._recorder.failure(route, err, stream=False)
            raise
        except Exception:
            self._recorder.crash(route, stream=False)  # a bug anywhere up to the record is still a row
            raise

    async def _complete(self, body: dict[str, Any], route: Route) -> ChatOutcome:
        res = await self.executor.complete(route.chain, body)
        rt = res.runtime
        data = res.completion.data
        data["model"] = rt.cfg.id
        data["id"] = route.request_id  # the body's id is the ledger's: one id to trace a request by
        # what the client and the ledger see is the provider's sanitised count, never the raw field
        usage = res.completion.usage
        data["usage"] = usage.as_openai()
        total = time.perf_counter() - route.started
        overhead = max(0.0, total - res.upstream_s)
        self._recorder.record(route, rt, res.attempts, status="ok", error_class=None, latency_s=total,
                              ttft_s=None, usage=usage, stream=False)
        if self._observe_overhead is not None:
            self._observe_overhead(overhead)
        if route.shadow is not None:  # a background comparison; the client's answer is not touched
            route.shadow.completed(rt.cfg, data, usage)
        return ChatOutcome(data, usage, _facts(route, rt, res.attempts, overhead))

    async def stream(self, body: dict[str, Any], route: Route) -> ChunkStream:
        try:
            start = await self.executor.open_stream(route.chain, body)
        except NoHealthyModelError as err:
            self._recorder.failure(route, err, stream=True)
            raise
        except Exception:
            self._recorder.crash(route, stream=True)
            raise
        overhead = max(0.0, (time.perf_counter() - route.started) - start.ttft_s)
        if self._observe_overhead is not None:
            self._observe_overhead(overhead)
        return ChunkStream(_facts(route, start.runtime, start.attempts, overhead), self._relay(start, route))

    async def _relay(self, start: StreamStart, route: Route) -> AsyncGenerator[dict[str, Any] | StreamFailure, None]:
        rt = start.runtime
        usage = Usage()
        status, error_class = "ok", None
        mid = rt.cfg.id
        rid = route.request_id
        ttft = time.perf_counter() - route.started
        rest = start.rest
        try:
            chunk: object = start.first
            while True:
                if not isinstance(chunk, dict):
                    raise UnavailableError(f"{mid}: malformed stream chunk", provider=rt.cfg.provider, model=mid)
                u = chunk.get("usage")
                if u:
                    usage = Usage.from_openai(u) or usage
                    chunk["usage"] = usage.as_openai()
                chunk["id"] = rid
                chunk["model"] = mid
                if route.shadow is not None:
                    route.shadow.feed(chunk)
                if u or chunk.get("choices"):
                    yield chunk
                try:
                    chunk = await anext(rest)
                except StopAsyncIteration:
                    break
        except ProviderError as err:  # the upstream's, or thrown in by a renderer that could not send a chunk
            status, error_class = "stream_error", err.kind
            if err.blame == "upstream":
                rt.breaker.record_failure(time.monotonic(), err.kind)
            yield StreamFailure(err.kind, f"upstream stream from '{mid}' failed: {err.kind}", "upstream_error")
        except (asyncio.CancelledError, GeneratorExit):
            status, error_class = "stream_error", "client_disconnected"
            raise
        except Exception:
            # a bug of ours mid-stream: the client gets an error event, the model is not blamed
            log.exception("unhandled error relaying stream %s", rid)
            status, error_class = "stream_error", "internal_error"
            yield StreamFailure("internal_error", "internal error in the router while relaying the stream",
                                "server_error")
        finally:
            await aclose_quietly(rest)
            self._recorder.record(route, rt, start.attempts, status=status, error_class=error_class,
                                  latency_s=time.perf_counter() - route.started, ttft_s=ttft, usage=usage,
                                  stream=True)
            if route.shadow is not None and status == "ok":
                route.shadow.streamed(rt.cfg, usage)

    # ---- embeddings (h6): no split, a pinned or default model, fallback within its embedding_group ----

    def _embedding_chain(self, requested: str | None) -> list[str]:
        runtimes = self._state.runtimes
        models = [rt.cfg for rt in runtimes.values() if rt.cfg.kind == "embedding"]
        if requested in (None, "", "auto"):
            default = self._state.routing.embedding_default
            if default is None:
                usable = [m for m in models if runtimes[m.id].configured]
                usable.sort(key=lambda m: not m.is_local)  # local first, config order otherwise
                if not usable:
                    raise RequestError("No embedding model is configured: add a model with kind = \"embedding\" "
                                       "(see docs/api-embeddings.md) or install the [embed] extra.",
                                       param="model", code="no_embedding_model", status=400)
                default = usable[0].id
            requested = default
        assert requested is not None
        if requested not in runtimes:
            raise UnknownModelError(requested, [m.id for m in models])
        rt = runtimes[requested]
        if rt.cfg.kind != "embedding" or not isinstance(rt.provider, Embedder):
            raise RequestError(f"The model '{requested}' is not an embedding model (kind = \"embedding\").",
                               param="model", code="model_not_supported", status=400)
        if not rt.configured:
            from wilton_core.localembed import INSTALL_HINT

            how = INSTALL_HINT if rt.cfg.provider == "minilm" else f"set {' or '.join(rt.cfg.key_env_names)}"
            raise RequestError(f"The model '{requested}' is not configured: {how} to use it.", param="model",
                               code="model_not_configured", status=400)
        group = rt.cfg.embedding_group
        # vectors of different models are not comparable: fall back only to declared equivalents
        peers = [m for m in models if group is not None and m.id != requested and m.embedding_group == group
                 and runtimes[m.id].configured and isinstance(runtimes[m.id].provider, Embedder)]
        peers.sort(key=lambda m: not m.is_local)
        return [requested] + [m.id for m in peers]

    async def embed(self, model: str | None, inputs: list[str], dimensions: int | None, request_id: str,
                    started: float, caller: Caller | None = None) -> EmbedResult:
        route = Route(request_id, [], "embedding", 0.0, started)
        if caller is not None:
            route.key_id, route.local_only = caller.key_id, caller.local_only
        self._recorder.open_span(route, model or "auto", False)
        try:
            chain = self._embedding_chain(model)
            if caller is not None:  # the key's allow-list and local-only hold here too
                allowed = [m for m in chain if caller.permits(m, self._state.is_local[m])]
                if not allowed:
                    raise RequestError(f"This key may not use the embedding model '{chain[0]}'.", param="model",
                                       code="model_not_allowed", status=403)
                chain = allowed
            route.chain = chain
        except RequestError as err:
            self._recorder.refusal(route, err.code or "bad_request", err.status, False)
            raise

        async def call(rt: ModelRuntime) -> Embeddings:
            provider = rt.provider
            assert isinstance(provider, Embedder)
            return await provider.embed(inputs, dimensions)

        try:
            rt, res, attempts, upstream_s = await self.executor.run(route.chain, call)
        except NoHealthyModelError as err:
            self._recorder.failure(route, err, stream=False)
            raise
        except Exception:
            self._recorder.crash(route, stream=False)
            raise
        total = time.perf_counter() - route.started
        self._recorder.record(route, rt, attempts, status="ok", error_class=None, latency_s=total, ttft_s=None,
                              usage=res.usage, stream=False)
        return EmbedResult(res.vectors, res.usage, _facts(route, rt, attempts, max(0.0, total - upstream_s)))
