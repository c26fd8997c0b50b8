"""Spans leave a service process by OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set
(what Kubernetes does to reach a collector): a tickets process on REAL servers sends its
spans to a stand-in collector on loopback, which decodes them as a collector would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

import tickets.main  # noqa: F401  (the process below runs it)
from harness.servers import LOOPBACK, ServiceProcess
from testkit.auth import session_cookie
from testkit.settings import process_env
from testkit.waiting import eventually


class Collector(ThreadingHTTPServer):
    """Answers POST /v1/traces like an OpenTelemetry Collector; keeps (service, span name)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.paths: set[str] = set()
        super().__init__((LOOPBACK, 0), CollectorHandler)


class CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:  # (the http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.received.append((attributes["service.name"], span.name))
        self.server.paths.add(self.path)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_a_service_sends_its_spans_to_the_otlp_endpoint(
    mongo_server, nats_server, collector, tmp_path
):
    endpoint = f"http://{LOOPBACK}:{collector.server_address[1]}"
    tickets = ServiceProcess(
        "tickets",
        "tickets.main",
        process_env(
            mongo_server,
            nats_server,
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_BSP_SCHEDULE_DELAY="200",  # the SDK's own variables apply
        ),
        tmp_path,
    ).start()
    try:
        async with httpx.AsyncClient(base_url=tickets.url, cookies=session_cookie()) as client:
            created = await client.post("/api/tickets", json={"title": "Gig", "price": 5})
            assert created.status_code == 201
            assert (await client.get("/healthz")).status_code == 200

        def received(name: str) -> bool:
            return ("tickets", name) in collector.received

        await eventually(lambda: received("publish ticket.created"))
        assert received("POST /api/tickets")
    finally:
        tickets.stop()
    assert collector.paths == {"/v1/traces"}
    assert not any(name.startswith("GET /healthz") for _, name in collector.received)
