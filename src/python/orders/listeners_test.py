"""The orders service's listeners on a REAL nats-server and MongoDB-wire server: the
ticket replica follows ticket.created / ticket.updated in version order."""

import pytest
from bson import ObjectId

from common.events import STREAM_NAME, TicketCreatedEvent, TicketUpdatedEvent, publish
from common.testing.http import app_client
from common.testing.waiting import eventually
from orders.main import create_orders_app


@pytest.fixture
async def orders_app(make_settings, clean_db, nats_manager):
    app = create_orders_app(make_settings(), database=clean_db.name)
    async with app_client(app) as client:
        yield app, client


def ticket_event(model, version: int, **fields):
    values = {
        "id": TICKET_ID,
        "version": version,
        "title": f"v{version}",
        "price": 20,
        "userId": "u",
    }
    return model(**{**values, **fields})


TICKET_ID = str(ObjectId())


async def replica(db) -> dict | None:
    return await db.tickets.find_one({"_id": TICKET_ID})


async def test_ticket_created_is_copied_with_exact_cents(orders_app, clean_db, nats_manager):
    await publish(nats_manager.jetstream, ticket_event(TicketCreatedEvent, 0, price=19.99))
    await eventually(lambda: replica(clean_db))
    assert await replica(clean_db) == {
        "_id": TICKET_ID,
        "title": "v0",
        "priceCents": 1999,
        "userId": "u",
        "version": 0,
    }


async def test_updates_apply_in_version_order_whatever_order_they_arrive_in(
    orders_app, clean_db, nats_manager
):
    js = nats_manager.jetstream
    # the update first: it waits for the creation (naked, redelivered), then applies
    await publish(js, ticket_event(TicketUpdatedEvent, 2, orderId="o1"))
    await publish(js, ticket_event(TicketUpdatedEvent, 1))
    await publish(js, ticket_event(TicketCreatedEvent, 0))
    await eventually(lambda: _version_is(clean_db, 2))
    assert (await replica(clean_db))["title"] == "v2"


async def test_a_duplicate_is_acked_and_changes_nothing(orders_app, clean_db, nats_manager):
    app, _ = orders_app
    js = nats_manager.jetstream
    await publish(js, ticket_event(TicketCreatedEvent, 0))
    await publish(js, ticket_event(TicketUpdatedEvent, 1, title="new"))
    await eventually(lambda: _version_is(clean_db, 1))
    stale = ticket_event(TicketUpdatedEvent, 1, title="stale copy")
    # a copy past the 2-minute dedupe window: a message id of its own
    await js.publish(stale.subject, stale.encode(), headers={"Nats-Msg-Id": "late-copy"})
    listener = next(x for x in app.state.listeners if x.event is TicketUpdatedEvent)

    async def settled() -> bool:
        info = await js.consumer_info(STREAM_NAME, listener.durable)
        return (
            info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq == 3
        )

    await eventually(settled)
    assert (await replica(clean_db))["title"] == "new"


async def _version_is(db, version: int) -> bool:
    doc = await replica(db)
    return doc is not None and doc["version"] == version
