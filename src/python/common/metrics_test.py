"""/metrics on REAL servers: it parses as Prometheus text; requests are counted by route
template; the outbox backlog rises while NATS is down and falls to 0 once it is back;
a poison message counts as poisoned."""

from __future__ import annotations

from typing import Any

from common.app import create_app
from common.context import DataContext, StreamListener
from common.events import TicketCreatedEvent, publish
from common.service_template_test import ItemCopier, template_app
from common.settings import EventingSettings
from testkit.auth import TEST_JWT_KEY
from testkit.http import app_client
from testkit.metrics import scrape, value
from testkit.waiting import eventually


async def test_requests_events_and_consumers_are_counted(
    mongo_server, nats_server, nats_manager, clean_db
):
    ItemCopier.handled.clear()
    app = template_app(mongo_server, nats_server, clean_db.name)
    async with app_client(app) as client:
        for _ in range(2):
            assert (await client.post("/items")).status_code == 201
        assert (await client.get("/no/such/route")).status_code == 404
        await eventually(lambda: len(ItemCopier.handled) == 2)
        samples = await scrape(client)

    count = "http_request_duration_seconds_count"
    assert value(samples, count, route="/items", method="POST", status="201") == 2
    # an unknown path is one label value, whatever the path: the series stay bounded
    assert value(samples, count, route="unmatched", method="GET", status="404") == 1
    assert value(samples, "events_published_total", subject="ticket.created") == 2
    handled = value(samples, "events_handled_total", subject="ticket.created", outcome="ok")
    assert handled == 2
    assert value(samples, "events_redelivered_total", subject="ticket.created") == 0
    durable = "template-ticket-created"
    assert value(samples, "consumer_pending_messages", durable=durable) == 0
    assert value(samples, "outbox_backlog") is not None


async def test_the_outbox_backlog_rises_while_nats_is_down_and_falls_to_zero_after(
    mongo_server, nats_server, nats_manager, clean_db
):
    app = template_app(mongo_server, nats_server, clean_db.name)
    async with app_client(app) as client:
        nats_server.stop()
        try:
            await eventually(lambda: not app.state.context.nats.is_connected, within=30)
            for _ in range(3):  # accepted: the events wait in their documents
                assert (await client.post("/items")).status_code == 201
            down = await scrape(client)
        finally:
            nats_server.restart()
        assert value(down, "outbox_backlog") == 3
        assert (value(down, "outbox_oldest_unsent_age_seconds") or 0) > 0

        async def drained() -> bool:
            samples = await scrape(client)
            return value(samples, "outbox_backlog") == 0

        await eventually(drained, within=60)
        after = await scrape(client)
    assert value(after, "outbox_oldest_unsent_age_seconds") == 0
    assert value(after, "events_published_total", subject="ticket.created") == 3


class AlwaysFails(StreamListener[TicketCreatedEvent]):
    event = TicketCreatedEvent
    max_failures = 2
    retry_delay = 0.05
    poll_seconds = 0.2

    async def on_message(self, data: TicketCreatedEvent, msg: Any) -> None:
        raise RuntimeError("this handler never succeeds")


async def test_a_poison_message_is_counted(mongo_server, nats_server, nats_manager, clean_db):
    settings = EventingSettings(
        mongo_uri=mongo_server.uri,
        nats_url=nats_server.url,
        jwt_key=TEST_JWT_KEY,
        nats_client_id="poison-test",
    )
    context = DataContext(
        name="poison", settings=settings, database=clean_db.name, listeners=[AlwaysFails]
    )
    app = create_app(context)
    async with app_client(app) as client:
        event = TicketCreatedEvent(id="t1", version=0, title="x", price=1, userId="u1")
        await publish(nats_manager.jetstream, event)

        async def poisoned() -> bool:
            samples = await scrape(client)
            labels = {"subject": "ticket.created"}
            return value(samples, "events_handled_total", outcome="poisoned", **labels) == 1

        await eventually(poisoned, within=30)
        samples = await scrape(client)
    labels = {"subject": "ticket.created"}
    assert value(samples, "events_handled_total", outcome="retried", **labels) == 1
    assert value(samples, "events_redelivered_total", **labels) == 1
