"""A process that exports no spans (no OTLP endpoint, no trace files: the production
default without a collector) records none, and its MongoDB clients trace nothing, yet
trace ids still reach its log lines and travel on with its requests and events; a trace
its caller samples stays whole. (A file of its own: a process sets its tracer provider
once; `tracing_test.py` exports.)"""

import logging

import pytest
from fastapi import APIRouter
from opentelemetry import trace

from common.app import create_app
from common.context import ServiceContext
from common.events import TicketCreatedEvent
from common.mongo import create_mongo_client
from common.observability.tracing import (
    configure_tracing,
    context_from,
    current_carrier,
    exporting,
    tracer,
)
from common.outbox import pending_event
from common.settings import ProcessSettings
from testkit.http import app_client
from testkit.logs import json_log_lines

CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.fixture(scope="module", autouse=True)
def _provider():
    return configure_tracing("test")  # no exporter


def test_no_span_is_recorded_but_each_has_ids_for_the_logs_and_the_events():
    assert not exporting()
    with tracer.start_as_current_span("work") as span:
        assert not span.is_recording()
        context = span.get_span_context()
        assert context.is_valid and not context.trace_flags.sampled
        event = pending_event(
            TicketCreatedEvent(id="i", version=0, title="a", price=1, userId="u"), "w", 0
        )
    version, trace_id, span_id, flags = event["trace"]["traceparent"].split("-")
    assert (trace_id, span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert not int(flags, 16) & 1  # not sampled: downstream records nothing either


def test_a_trace_the_caller_samples_is_recorded_and_carried_on_sampled():
    sampled = context_from({"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    with tracer.start_as_current_span("work", context=sampled) as span:
        assert span.is_recording()
        assert current_carrier()["traceparent"].startswith(f"00-{CALLER_TRACE}-")
        assert current_carrier()["traceparent"].endswith("-01")


async def test_its_mongo_clients_do_not_trace_commands(mongo_server):
    client = create_mongo_client(mongo_server.uri, "unexported-test")
    try:
        assert client.options.event_listeners == []
        assert await client.admin.command("ping")
    finally:
        await client.close()


router = APIRouter()


@router.get("/hello")
async def hello() -> dict:
    logging.getLogger("hello").info("said hello")
    return {"hello": "world"}


async def test_a_requests_log_lines_carry_the_callers_trace_id():
    app = create_app(ServiceContext(name="demo", settings=ProcessSettings()), routers=[router])
    with json_log_lines("demo", "hello", logging.INFO) as lines:
        async with app_client(app) as client:
            unsampled = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"}
            assert (await client.get("/hello", headers=unsampled)).status_code == 200
            assert (await client.get("/hello")).status_code == 200
    continued, started = lines
    assert continued["trace_id"] == CALLER_TRACE
    assert continued["span_id"] != CALLER_SPAN  # the request's own span
    assert started["trace_id"] not in (CALLER_TRACE, None)
    assert trace.get_current_span() is trace.INVALID_SPAN
