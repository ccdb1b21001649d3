"""OpenTelemetry traces of routed requests: opt-in, and nothing at all when off.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the OpenTelemetry SDK's own variable; its other
`OTEL_*` variables — service name, headers, protocol — apply as usual) and the `[otel]` extra is
installed. Then each routed request is one span, `wilton.request`, whose attributes are the
routing decision (request id, intent, difficulty, the control threshold and phi target, the
chain, the model that answered, its tier, locality, fallbacks, status), and each upstream attempt
is a child span, `wilton.upstream`, named by model and provider, with the error kind when it
failed.

Off (the default), the SDK is never imported and the request path pays one `ContextVar.get()`
per upstream attempt and an `is None` test per request: `CURRENT` stays None.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from wilton_core.errors import ProviderError

if TYPE_CHECKING:  # the [otel] extra; at run time nothing is imported while tracing is off
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["CURRENT", "RequestSpan", "Tracing", "tracing_from_env"]

log = logging.getLogger("wilton.router")


class RequestSpan:
    """The span of one request; upstream attempts made while it is CURRENT become its children."""

    __slots__ = ("_ctx", "_done", "_tracer", "span")

    def __init__(self, tracer: Tracer, span: Span, ctx: Context) -> None:
        self._tracer = tracer
        self.span = span
        self._ctx = ctx
        self._done = False

    @contextlib.contextmanager
    def attempt(self, model_id: str, provider: str) -> Iterator[None]:
        child = self._tracer.start_span("wilton.upstream", context=self._ctx,
                                        attributes={"wilton.model": model_id, "wilton.provider": provider})
        try:
            yield
        except BaseException as e:
            kind = e.kind if isinstance(e, ProviderError) else type(e).__name__
            child.set_attribute("wilton.error", str(kind))
            from opentelemetry.trace import Status, StatusCode

            child.set_status(Status(StatusCode.ERROR, str(kind)))
            raise
        finally:
            child.end()

    def set(self, key: str, value: str) -> None:
        self.span.set_attribute(key, value)

    def end(self, attributes: Mapping[str, Any]) -> None:
        if self._done:  # a refusal recorded, then re-raised and recorded again: one end
            return
        self._done = True
        self.span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        status = attributes.get("wilton.status")
        if status not in (None, "ok"):
            from opentelemetry.trace import Status, StatusCode

            self.span.set_status(Status(StatusCode.ERROR, str(attributes.get("wilton.error_class") or status)))
        self.span.end()


# The request being served in this task (asyncio copies contextvars per task): None when tracing is off.
CURRENT: ContextVar[RequestSpan | None] = ContextVar("wilton_request_span", default=None)


class Tracing:
    """Starts request spans on an OpenTelemetry tracer (a real SDK one, or a test's)."""

    def __init__(self, tracer: Tracer, provider: TracerProvider | None = None) -> None:
        self._tracer = tracer
        self._provider = provider

    def shutdown(self) -> None:
        """Flush and stop the exporter (router shutdown)."""
        if self._provider is not None:
            self._provider.shutdown()

    def start(self, started_perf: float, attributes: Mapping[str, Any]) -> RequestSpan:
        """A request span that began at `started_perf` (perf_counter); it is CURRENT from here on."""
        from opentelemetry import trace

        start_ns = time.time_ns() - int((time.perf_counter() - started_perf) * 1e9)
        span = self._tracer.start_span("wilton.request", start_time=start_ns,
                                       attributes={k: v for k, v in attributes.items() if v is not None})
        rs = RequestSpan(self._tracer, span, trace.set_span_in_context(span))
        CURRENT.set(rs)
        return rs


def tracing_from_env(environ: Mapping[str, str]) -> Tracing | None:
    """A Tracing exporting over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else None (off)."""
    if not environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
                    "(pip install -e '.[otel]'); tracing stays off")
        return None
    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "wilton-router")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # spans leave off the request path
    return Tracing(provider.get_tracer("wilton_core.router"), provider)
