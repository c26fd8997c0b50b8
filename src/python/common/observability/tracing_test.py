"""Traces on REAL servers: the trace an event is recorded in goes with it through the
outbox (straight away or by the relay, later), across NATS, into the listener that
handles it and the events that listener records; MongoDB commands are spans of the
request that made them (and only then); an HTTP request continues its caller's
`traceparent`; log lines name their trace. The same across real processes:
`orders/tracing_test.py`."""

import json
import logging

import pytest
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from common.app import create_app
from common.context import ServiceContext
from common.events import Listener, TicketCreatedEvent, TicketUpdatedEvent
from common.mongo import create_mongo_client
from common.observability.logs import JsonFormatter, TextFormatter
from common.observability.tracing import JsonLinesExporter, configure_tracing, span_record, tracer
from common.outbox import PENDING, Outbox, pending_event
from common.settings import ProcessSettings
from testkit.http import app_client
from testkit.logs import json_log_lines
from testkit.streams import running_outbox, stream_messages
from testkit.waiting import eventually

ITEMS = "items"

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider():
    # once per process: pants runs a file per process
    return configure_tracing("test", processors=[SimpleSpanProcessor(_exporter)])


@pytest.fixture
def spans() -> InMemorySpanExporter:
    _exporter.clear()
    return _exporter


@pytest.fixture
async def db(mongo_server, clean_db):
    """The test's database through a client made as the services make theirs."""
    client = create_mongo_client(mongo_server.uri, "tracing-test")
    yield client[clean_db.name]
    await client.close()


@pytest.fixture
async def outbox(db, nats_manager):
    async with running_outbox(db, nats_manager, [ITEMS]) as box:
        yield box


def created(item_id: str) -> TicketCreatedEvent:
    return TicketCreatedEvent(id=item_id, version=0, title="a", price=1, userId="u")


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


def ids(context: trace.SpanContext) -> tuple[int, int]:
    return context.trace_id, context.span_id


class UpdatesWhatWasCreated(Listener[TicketCreatedEvent]):
    """Handles ticket.created by recording a ticket.updated: the trace must go on."""

    event = TicketCreatedEvent
    poll_seconds = 0.2

    def __init__(self, nats, service, db, outbox) -> None:
        super().__init__(nats, service)
        self.db, self.outbox = db, outbox

    async def on_message(self, data: TicketCreatedEvent, msg) -> None:
        doc = await self.db[ITEMS].find_one({"_id": data.id})
        await self.outbox.update(
            ITEMS,
            doc,
            {"title": "b"},
            lambda new: TicketUpdatedEvent(
                id=new["_id"], version=new["version"], title="b", price=1, userId="u"
            ),
        )


class SeesUpdates(Listener[TicketUpdatedEvent]):
    event = TicketUpdatedEvent
    poll_seconds = 0.2

    async def on_message(self, data: TicketUpdatedEvent, msg) -> None:
        pass


async def test_a_request_trace_follows_its_event_through_a_listener_and_the_next_event(
    spans, db, outbox, nats_manager
):
    listeners = [
        UpdatesWhatWasCreated(nats_manager, "trace-test", db, outbox),
        SeesUpdates(nats_manager, "trace-test"),
    ]
    for listener in listeners:
        await listener.start()
    try:
        with tracer.start_as_current_span("POST /api/items") as request:
            await outbox.insert(ITEMS, {"_id": "i1", "title": "a", "version": 0}, created("i1"))
        await eventually(lambda: listeners[1].outcomes["ok"] == 1)
    finally:
        for listener in listeners:
            await listener.stop()

    [publish_created] = named(spans, "publish ticket.created")
    [process_created] = named(spans, "process ticket.created")
    [publish_updated] = named(spans, "publish ticket.updated")
    [process_updated] = named(spans, "process ticket.updated")
    trace_id = request.get_span_context().trace_id
    chain = [publish_created, process_created, publish_updated, process_updated]
    assert {span.context.trace_id for span in chain} == {trace_id}  # one trace
    # each the child of the one before: request -> publish -> process -> publish -> process
    parents = [request.get_span_context().span_id, *(span.context.span_id for span in chain)]
    assert [span.parent.span_id for span in chain] == parents[:-1]
    assert [span.kind for span in chain] == [SpanKind.PRODUCER, SpanKind.CONSUMER] * 2
    # a consumer span is also linked to the producer span (the messaging convention)
    assert [ids(link.context) for link in process_created.links] == [ids(publish_created.context)]
    assert process_updated.attributes["ticketing.outcome"] == "ok"
    assert process_created.attributes["messaging.consumer.group.name"] == (
        "trace-test-ticket-created"
    )
    # the context travelled in the message headers, as W3C traceparent
    [message] = await stream_messages(nats_manager.jetstream, "ticket.created")
    version, sent_trace, sent_span, _flags = message.headers["traceparent"].split("-")
    assert (version, sent_trace, sent_span) == (
        "00",
        f"{trace_id:032x}",
        f"{publish_created.context.span_id:016x}",
    )
    # the listener's MongoDB commands are spans of its handling
    find = [s for s in spans.get_finished_spans() if s.name.endswith(".find")]
    assert process_created.context.span_id in {span.parent.span_id for span in find}


async def test_the_relay_publishes_an_event_in_the_trace_it_was_recorded_in(
    spans, db, nats_manager
):
    # the process died after the write, before publishing: the event waits in its document
    with tracer.start_as_current_span("POST /api/items") as request:
        pending = pending_event(created("i2"), "w", 0)
    assert pending["trace"]["traceparent"].split("-")[2] == (
        f"{request.get_span_context().span_id:016x}"
    )
    await db[ITEMS].insert_one({"_id": "i2", "version": 0, PENDING: [pending]})
    relay = Outbox(db, nats_manager, [ITEMS], publish_timeout=2).relay
    assert trace.get_current_span().get_span_context().is_valid is False  # no trace now
    await relay._adopt({"_id": "w", "mark": 0, "beat": None, "host": "gone"})  # its adopter

    [publish] = named(spans, "publish ticket.created")
    assert publish.context.trace_id == request.get_span_context().trace_id
    assert publish.parent.span_id == request.get_span_context().span_id


async def test_an_event_recorded_outside_a_trace_carries_none(db):
    assert "trace" not in pending_event(created("i3"), "w", 0)


async def test_mongo_commands_are_spans_only_inside_a_trace(spans, db):
    await db[ITEMS].insert_one({"_id": "outside"})  # e.g. the relay's scan: no trace of its own
    assert spans.get_finished_spans() == ()
    with tracer.start_as_current_span("request") as request:
        await db[ITEMS].find_one({"_id": "outside"})
    [find] = [span for span in spans.get_finished_spans() if span.name != "request"]
    assert find.name == f"{db.name}.find"
    assert find.kind == SpanKind.CLIENT
    assert find.parent.span_id == request.get_span_context().span_id


router = APIRouter()


@router.get("/hello")
async def hello() -> dict:
    logging.getLogger("hello").info("said hello")
    return {"hello": "world"}


@router.get("/items/{item_id}/boom")
async def boom(item_id: str) -> dict:
    raise RuntimeError("a bug")


async def test_a_request_continues_the_callers_trace_and_its_log_lines_carry_it(spans):
    app = create_app(ServiceContext(name="demo", settings=ProcessSettings()), routers=[router])
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with json_log_lines("demo", "hello", logging.INFO) as lines:
        async with app_client(app) as client:
            response = await client.get(
                "/hello", headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"}
            )
            assert response.status_code == 200
            assert (await client.get("/healthz")).status_code == 200

    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.name == "GET /hello"  # probes are not traced: only this one
    assert f"{server.context.trace_id:032x}" == caller_trace
    assert f"{server.parent.span_id:016x}" == caller_span
    [line] = lines
    assert line["message"] == "said hello"
    assert line["trace_id"] == caller_trace
    assert line["span_id"] == f"{server.context.span_id:016x}"


async def test_a_server_span_names_its_route_and_marks_a_server_error(spans):
    app = create_app(ServiceContext(name="demo", settings=ProcessSettings()), routers=[router])
    async with app_client(app) as client:
        assert (await client.get("/items/42/boom")).status_code == 500
        assert (await client.get("/nowhere")).status_code == 404

    failed, unmatched = (s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert failed.name == "GET /items/{item_id}/boom"  # the template: bounded names
    assert failed.attributes["http.route"] == "/items/{item_id}/boom"
    assert failed.attributes["url.path"] == "/items/42/boom"
    assert failed.attributes["http.request.method"] == "GET"
    assert failed.attributes["http.response.status_code"] == 500
    assert failed.status.status_code == StatusCode.ERROR
    assert unmatched.name == "GET"  # no route matched: no template to name it by
    assert unmatched.attributes["http.response.status_code"] == 404
    assert unmatched.status.status_code == StatusCode.UNSET
    assert failed.parent is None and failed.context.trace_id != unmatched.context.trace_id


def test_text_log_lines_end_with_their_trace_id_and_json_lines_outside_a_trace_have_none():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hi", None, None)
    assert "trace" not in TextFormatter().format(record)
    assert "trace_id" not in json.loads(JsonFormatter("demo").format(record))
    with tracer.start_as_current_span("work") as span:
        text = TextFormatter().format(record)
    assert text.endswith(f" [trace {span.get_span_context().trace_id:032x}]")


def test_the_trace_file_holds_one_json_object_per_span(spans, tmp_path):
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
        pass
    inner, outer = spans.get_finished_spans()
    exporter = JsonLinesExporter(tmp_path / "traces" / "demo.jsonl")
    exporter.export([inner, outer])
    lines = [json.loads(line) for line in exporter.path.read_text().splitlines()]
    assert lines == [span_record(inner), span_record(outer)]
    assert lines[0]["parent_id"] == lines[1]["span_id"]
    assert lines[1]["parent_id"] is None
    assert {line["service"] for line in lines} == {"test"}
    assert lines[0]["trace_id"] == f"{outer.context.trace_id:032x}"


def test_a_trace_file_past_its_size_becomes_the_old_one_and_a_new_one_starts(spans, tmp_path):
    with tracer.start_as_current_span("one"):
        pass
    [span] = spans.get_finished_spans()
    exporter = JsonLinesExporter(tmp_path / "demo.jsonl", max_bytes=1000)
    line = len(json.dumps(span_record(span))) + 1
    batches = -(-1000 // line) + 1  # enough to pass the limit, then one more
    for _ in range(batches):
        exporter.export([span])
    old, new = tmp_path / "demo.jsonl.1", tmp_path / "demo.jsonl"
    assert len(old.read_text().splitlines()) == batches - 1
    assert len(new.read_text().splitlines()) == 1
    for _ in range(batches):
        exporter.export([span])
    assert len(old.read_text().splitlines()) == batches - 1  # replaced, not grown
    assert sorted(path.name for path in tmp_path.iterdir()) == ["demo.jsonl", "demo.jsonl.1"]
