"""A tiny service built from the template (a `DataContext` and `create_app`), on a
REAL nats-server and MongoDB-wire server: a route records its event through the outbox,
a listener of the same service consumes it, and two replicas share the durable."""

import asyncio
from collections import Counter
from typing import ClassVar

from bson import ObjectId
from fastapi import APIRouter

from common.app import create_app
from common.context import DataContext, DataListener
from common.deps import OutboxDep
from common.events import TicketCreatedEvent
from common.replica import apply_in_order
from common.settings import EventingSettings
from testkit.auth import TEST_JWT_KEY
from testkit.http import app_client
from testkit.streams import caught_up, outbox_drained, stream_messages
from testkit.waiting import eventually

ITEMS = "items"
router = APIRouter()


@router.post("/items", status_code=201)
async def add_item(outbox: OutboxDep) -> dict:
    doc = {"_id": str(ObjectId()), "title": "thing", "version": 0}
    event = TicketCreatedEvent(id=doc["_id"], version=0, title="thing", price=1, userId="u1")
    await outbox.insert(ITEMS, doc, event)
    return {"id": doc["_id"]}


class ItemCopier(DataListener[TicketCreatedEvent]):
    """Copies each item into a replica collection, and remembers who handled it."""

    event = TicketCreatedEvent
    poll_seconds = 0.2
    handled: ClassVar[Counter[str]] = Counter()

    async def on_message(self, data: TicketCreatedEvent, msg) -> None:
        await apply_in_order(self.context.db.copies, data.id, data.version, {"title": data.title})
        ItemCopier.handled[data.id] += 1


def template_app(mongo_server, nats_server, database: str):
    settings = EventingSettings(
        mongo_uri=mongo_server.uri,
        nats_url=nats_server.url,
        jwt_key=TEST_JWT_KEY,
        nats_client_id="template-test",
        outbox_interval=0.1,
    )
    context = DataContext(
        name="template",
        settings=settings,
        database=database,
        events_in=[ITEMS],
        listeners=[ItemCopier],
    )
    return create_app(context, routers=[router])


async def test_one_call_wires_outbox_and_listeners_and_replicas_share_the_work(
    mongo_server, nats_server, nats_manager, clean_db
):
    ItemCopier.handled.clear()
    first = template_app(mongo_server, nats_server, clean_db.name)
    second = template_app(mongo_server, nats_server, clean_db.name)
    async with app_client(first) as one, app_client(second) as two:
        assert [type(listener) for listener in first.state.context.running] == [ItemCopier]
        responses = await asyncio.gather(*(client.post("/items") for client in [one, two] * 15))
        assert {r.status_code for r in responses} == {201}
        ids = {r.json()["id"] for r in responses}
        # every event is consumed once, by one replica or the other
        await eventually(lambda: sum(ItemCopier.handled.values()) >= len(ids))
        await eventually(lambda: outbox_drained(clean_db, ITEMS))
        durable = first.state.context.running[0].durable  # the replicas share it
        await eventually(lambda: caught_up(nats_manager.jetstream, durable))
    assert set(ItemCopier.handled) == ids
    assert set(ItemCopier.handled.values()) == {1}
    assert await clean_db.copies.count_documents({}) == len(ids)
    messages = await stream_messages(nats_manager.jetstream, "ticket.created")
    assert sorted(m.headers["Nats-Msg-Id"] for m in messages) == sorted(
        f"ticket.created:{item_id}:0" for item_id in ids
    )


async def test_shutdown_stops_listeners_then_the_relay_then_nats(
    mongo_server, nats_server, nats_manager, clean_db
):
    app = template_app(mongo_server, nats_server, clean_db.name)
    async with app_client(app):
        [listener] = app.state.context.running
        outbox = app.state.context.outbox
        assert listener.running
    assert not listener.running
    assert not outbox.relay.running
    assert not app.state.context.nats.is_connected
