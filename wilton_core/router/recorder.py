"""What is recorded about a request: one ledger row for every outcome, and its tracing span.

Every routed request is a row — answered, refused while routing, failed on every model, or
ended by a bug of ours — so phi, spend and error rates are computed from all of them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

from wilton_core.config import ModelConfig
from wilton_core.errors import NoHealthyModelError
from wilton_core.router.fallback import Attempt, ModelRuntime
from wilton_core.router.results import Route
from wilton_core.router.state import RouterState
from wilton_core.router.tracing import Tracing
from wilton_core.types import Ledger, LedgerRecord, Usage

__all__ = ["Recorder"]

log = logging.getLogger("wilton.router")


class Recorder:
    def __init__(self, state: RouterState, ledger: Ledger | None, tracing: Tracing | None) -> None:
        self._state = state
        self.ledger = ledger
        self.tracing = tracing

    def open_span(self, route: Route, requested: str, stream: bool) -> None:
        """Start the request's span (tracing on only): its attempts become children."""
        if self.tracing is None:
            return
        control = self._state.control
        route.span = self.tracing.start(route.started, {
            "wilton.request_id": route.request_id, "wilton.intent": route.intent,
            "wilton.difficulty": route.difficulty, "wilton.threshold": control.threshold,
            "wilton.phi_target": control.phi_target, "wilton.requested_model": requested, "wilton.stream": stream})

    def refusal(self, route: Route, error_class: str, http_status: int, stream: bool) -> None:
        """A request refused while routing (no model was called): a row with no model."""
        if route.span is not None:
            route.span.end({"wilton.status": "error", "wilton.error_class": error_class,
                            "http.response.status_code": http_status})
        if self.ledger is None:
            return
        st = self._state
        self.ledger.submit(LedgerRecord(
            ts=st.clock(), request_id=route.request_id, model_id="", tier="", is_local=False, provider="",
            intent=route.intent, difficulty=route.difficulty, latency_s=time.perf_counter() - route.started,
            status="error", error_class=error_class, stream=stream, replica=st.replica,
            http_status=http_status, prompt=route.prompt, key_id=route.key_id, local_only=route.local_only,
        ))

    def record(self, route: Route, rt: ModelRuntime | None, attempts: Sequence[Attempt], *, status: str,
               error_class: str | None, latency_s: float, ttft_s: float | None, usage: Usage,
               stream: bool, http_status: int = 200) -> None:
        st = self._state
        cfg: ModelConfig | None = rt.cfg if rt else None
        if cfg is None and route.chain:
            # nothing served it: label the failure with the model that was tried last (or first
            # in line), so errors show per model; phi ignores status "error" rows
            mid = attempts[-1].model_id if attempts else route.chain[0]
            cfg = st.runtimes[mid].cfg
        if cfg is not None and status == "ok":
            st.latency.record_model(cfg.id, latency_s, ttft_s)
        if route.span is not None:
            route.span.end({
                "wilton.status": status, "wilton.error_class": error_class, "http.response.status_code": http_status,
                "wilton.model": cfg.id if cfg else None, "wilton.tier": cfg.tier if cfg else None,
                "wilton.local": bool(cfg and cfg.is_local), "wilton.fallbacks": len(attempts),
                "wilton.tried": ",".join(a.model_id for a in attempts),
                "wilton.tokens_in": usage.prompt_tokens, "wilton.tokens_out": usage.completion_tokens})
        if self.ledger is None:
            return
        self.ledger.submit(LedgerRecord(
            ts=st.clock(), request_id=route.request_id,
            model_id=cfg.id if cfg else (attempts[-1].model_id if attempts else ""),
            tier=cfg.tier if cfg else "", is_local=bool(cfg and cfg.is_local),
            provider=cfg.provider if cfg else "", intent=route.intent, difficulty=route.difficulty,
            latency_s=latency_s, ttft_s=ttft_s, tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
            cost_usd=cfg.cost_usd(usage.prompt_tokens, usage.completion_tokens) if cfg and rt else 0.0,
            status=status, error_class=error_class, fallbacks=len(attempts),
            tried=",".join(a.model_id for a in attempts), stream=stream, replica=st.replica,
            prompt=route.prompt, attempt_errors=",".join(f"{a.model_id}:{a.kind}" for a in attempts),
            http_status=http_status, key_id=route.key_id, local_only=route.local_only,
        ))

    def failure(self, route: Route, err: NoHealthyModelError, stream: bool) -> None:
        """A request no model could serve still lands in the ledger (status error)."""
        attempts = [Attempt(m, k) for m, k in err.tried if k != "cooldown"]
        self.record(route, None, attempts, status="error", error_class=err.rejected or "no_healthy_model",
                    latency_s=time.perf_counter() - route.started, ttft_s=None, usage=Usage(), stream=stream,
                    http_status=err.status)

    def crash(self, route: Route, stream: bool) -> None:
        """A bug of ours ended the request (the client gets a 500): it is still a ledger row."""
        log.exception("unhandled error routing request %s", route.request_id)
        with contextlib.suppress(Exception):
            self.record(route, None, [], status="error", error_class="internal_error",
                        latency_s=time.perf_counter() - route.started, ttft_s=None, usage=Usage(),
                        stream=stream, http_status=500)
