"""Traces: one trace from the web's call to the last listener (OpenTelemetry, W3C
`traceparent`), so "where did my order go?" has one answer across the services.

- HTTP: a request continues its caller's `traceparent` or starts a trace: a server span
  named by its route (`ServerSpans`); the MongoDB commands made while serving it are its
  child spans (`common.mongo.MongoCommandSpans`).
- Events: the outbox stores the trace context current when it records an event
  (`current_carrier`), so the relay, publishing it later, continues the same trace;
  publishing is a producer span whose context goes in the NATS headers
  (`producer_span`); a listener handles each message in a consumer span, the producer
  span its parent (`consumer_span`), and the events it records carry the trace on.

Export (`configure_tracing`, once per process): OTLP/HTTP to
`OTEL_EXPORTER_OTLP_ENDPOINT` (a collector, Jaeger, Tempo ...) when set; JSON lines in
`TRACES_DIR/<service>.jsonl` when set (`./run`: `.state/traces`, shown by
`./run traces`). With neither, nothing is recorded that nobody would read: spans are
made without attributes or timings (their ids still reach log lines and travel on, so
a trace keeps its id across the services), unless the caller's trace is sampled, and
MongoDB commands are not traced (the driver's command events alone cost ~12 % of a
read's CPU; BENCHMARKS.md). The SDK's own variables apply: `OTEL_SDK_DISABLED=true`
turns tracing off, `OTEL_TRACES_SAMPLER`/`_ARG` sample what is exported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Link, Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROPAGATOR = TraceContextTextMapPropagator()
"""W3C trace context: the `traceparent` (and `tracestate`) header, over HTTP and NATS."""

tracer = trace.get_tracer("ticketing")
"""Resolves to the provider `configure_tracing` sets (until then: spans are not kept)."""

FILE_EXPORT_DELAY_MS = 500
"""Spans reach the trace files within about this long (`./run traces` reads them)."""


_exporting = False


def configure_tracing(
    service: str,
    *,
    traces_dir: Path | None = None,
    otlp_endpoint: str = "",
    processors: Sequence[SpanProcessor] = (),
) -> TracerProvider:
    """This process's tracer provider (`service.name` = `service`), made global.
    `processors`: more span processors (tests pass an in-memory exporter's)."""
    global _exporting
    processors = list(processors)
    if otlp_endpoint:
        # only the process entry point exports: imported here, not by every test
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT/HEADERS/TIMEOUT itself
        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    if traces_dir is not None:
        exporter = JsonLinesExporter(traces_dir / f"{service}.jsonl")
        processors.append(BatchSpanProcessor(exporter, schedule_delay_millis=FILE_EXPORT_DELAY_MS))
    _exporting = bool(processors)
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        # exporting: the SDK's default (always on, or OTEL_TRACES_SAMPLER); not: record
        # only a trace a caller samples (so it stays whole downstream), never start one
        sampler=None if _exporting else ParentBased(ALWAYS_OFF),
    )
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def exporting() -> bool:
    """Spans go somewhere (`configure_tracing` was given an exporter): MongoDB clients
    made from then on trace their commands."""
    return _exporting


def shutdown_tracing() -> None:
    """Export what is buffered (the process is about to exit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def current_carrier() -> dict[str, str]:
    """The current trace context as headers (`{"traceparent": ...}`; empty outside a
    trace): what the outbox stores with an event."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str] | None) -> Context:
    return PROPAGATOR.extract(dict(headers or {}))


def _messaging(subject: str, msg_id: str) -> dict[str, str]:
    return {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.message.id": msg_id,
    }


@contextmanager
def producer_span(
    subject: str, msg_id: str, parent: Mapping[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """A `publish <subject>` span, the child of `parent` (a stored carrier) or else of
    the current span; yields the headers that carry it to the consumers."""
    context = context_from(parent) if parent else None
    with tracer.start_as_current_span(
        f"publish {subject}",
        context=context,
        kind=SpanKind.PRODUCER,
        attributes=_messaging(subject, msg_id),
    ):
        yield current_carrier()


@contextmanager
def consumer_span(
    subject: str, msg_id: str, headers: Mapping[str, str] | None, consumer: str
) -> Iterator[Span]:
    """A `process <subject>` span for one delivery: the child of the span that published
    the message (so the trace goes on), and linked to it (the messaging convention)."""
    parent = context_from(headers)
    producer = trace.get_current_span(parent).get_span_context()
    links = [Link(producer)] if producer.is_valid else []
    attributes = {**_messaging(subject, msg_id), "messaging.consumer.group.name": consumer}
    with tracer.start_as_current_span(
        f"process {subject}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
        record_exception=False,  # the listener decides what a failure means
        set_status_on_exception=False,
    ) as span:
        yield span


class ServerSpans:
    """ASGI middleware: each HTTP request in a SERVER span, `<METHOD> <route template>`
    (`POST /api/orders`), the child of the caller's `traceparent` if it sent one.
    `untraced`: paths not worth a span (probes, scrapes).

    Ours rather than FastAPI's own telemetry or the contrib instrumentation: the same
    span for a third of their cost per request."""

    def __init__(self, app: ASGIApp, untraced: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADERS
        }
        method = scope["method"]
        attributes = {"http.request.method": method, "url.path": scope["path"]}
        if scope.get("client"):
            attributes["client.address"] = scope["client"][0]
        span = tracer.start_span(
            method,  # renamed by route once routing has matched one
            context=context_from(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )

        def describe(status: int) -> None:
            if span.is_recording():
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                describe(message["status"])
            await send(message)

        with trace.use_span(span, end_on_exit=True):  # an exception is recorded on it
            try:
                await self.app(scope, receive, send_traced)
            except Exception:
                describe(500)  # what Starlette's outermost handler answers
                raise


_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex, for log lines; None outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# -- the local trace files ------------------------------------------------------------


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as one JSON object (what `./run traces` reads back)."""
    context = span.get_span_context()
    assert context is not None and span.start_time is not None and span.end_time is not None
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name", "-"),
        "start": datetime.fromtimestamp(span.start_time / 1e9, UTC).isoformat(),
        "duration_ms": round((span.end_time - span.start_time) / 1e6, 3),
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
            }
            for link in span.links
        ],
    }


class JsonLinesExporter(SpanExporter):
    """Spans appended to one file, one JSON object per line (a local stand-in for a
    trace backend: nothing to install). Past `max_bytes` the file becomes
    `<name>.1` (replacing the one before) and a new one starts: a stack left running
    for days keeps at most twice that per process."""

    def __init__(self, path: Path, max_bytes: int = 10_000_000) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span), default=str) + "\n" for span in spans)
        try:
            with self._lock:
                if self.path.exists() and self.path.stat().st_size >= self.max_bytes:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(lines)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
