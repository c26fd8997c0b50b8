"""The outbox on a REAL MongoDB-wire server and a REAL nats-server: one write carries the
change and its event; publish, clear, versions in order, conflicts, and the relay
healing what a request could not send. (The tickets service's live and fault tests
prove the same through HTTP, with NATS killed under load.)"""

import asyncio
import json

import pytest

from common.events import TicketCreatedEvent, TicketUpdatedEvent
from common.mongo import VersionConflict
from common.outbox import PENDING, Outbox, unsent_count
from common.testing.fakes import RecordingNats
from common.testing.streams import outbox_drained, stream_messages
from common.testing.waiting import eventually

ITEMS = "items"


def created(doc: dict) -> TicketCreatedEvent:
    return TicketCreatedEvent(id=doc["_id"], version=0, title=doc["title"], price=1, userId="u")


def updated(doc: dict) -> TicketUpdatedEvent:
    return TicketUpdatedEvent(
        id=doc["_id"], version=doc["version"], title=doc["title"], price=1, userId="u"
    )


async def add(outbox: Outbox, item_id: str = "i1") -> dict:
    doc = {"_id": item_id, "title": "a", "version": 0}
    return await outbox.insert(ITEMS, doc, created(doc))


@pytest.fixture
async def outbox(clean_db, nats_manager):
    box = Outbox(clean_db, nats_manager, [ITEMS], publish_timeout=2, interval=0.1)
    await box.start()
    yield box
    await box.stop()


async def test_insert_stores_the_event_in_the_document_publishes_it_then_clears_it(
    outbox, clean_db, nats_manager
):
    doc = await add(outbox)
    assert doc == {"_id": "i1", "title": "a", "version": 0}  # the outbox field is its own
    [message] = await stream_messages(nats_manager.jetstream)  # acked before returning
    assert message.subject == "ticket.created"
    assert message.headers["Nats-Msg-Id"] == "ticket.created:i1:0"
    assert json.loads(message.data) == {
        "id": "i1",
        "version": 0,
        "title": "a",
        "price": 1,
        "userId": "u",
    }
    await eventually(lambda: outbox_drained(clean_db, ITEMS))
    assert (await clean_db[ITEMS].find_one({"_id": "i1"}))[PENDING] == []


async def test_update_is_versioned_and_publishes_the_new_state(outbox, clean_db, nats_manager):
    doc = await add(outbox)
    new = await outbox.update(ITEMS, doc, {"title": "b"}, updated)
    assert new == {"_id": "i1", "title": "b", "version": 1}
    with pytest.raises(VersionConflict):  # `doc` is stale now
        await outbox.update(ITEMS, doc, {"title": "lost?"}, updated)
    assert (await clean_db[ITEMS].find_one({"_id": "i1"}))["title"] == "b"
    messages = await stream_messages(nats_manager.jetstream, "ticket.updated")
    assert [json.loads(m.data)["title"] for m in messages] == ["b"]


async def test_concurrent_updates_one_wins_per_version_and_versions_reach_the_stream_in_order(
    outbox, clean_db, nats_manager
):
    await add(outbox)
    wins = 0
    for round_ in range(5):
        current = await clean_db[ITEMS].find_one({"_id": "i1"})
        results = await asyncio.gather(
            *(
                outbox.update(ITEMS, current, {"title": f"r{round_}w{n}"}, updated)
                for n in range(4)
            ),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, dict)]
        assert len(winners) == 1
        assert all(isinstance(r, VersionConflict) for r in results if r not in winners)
        wins += 1
    versions = [
        json.loads(m.data)["version"]
        for m in await stream_messages(nats_manager.jetstream, "ticket.updated")
    ]
    assert versions == list(range(1, wins + 1))


async def test_nats_down_the_write_succeeds_and_the_relay_sends_it_when_back(
    outbox, clean_db, nats_manager, nats_server
):
    nats_server.stop()
    await eventually(lambda: not nats_manager.is_connected)
    doc = await add(outbox)
    await outbox.update(ITEMS, doc, {"title": "b"}, updated)
    assert await unsent_count(clean_db, [ITEMS]) == 1
    nats_server.restart()
    await eventually(lambda: outbox_drained(clean_db, ITEMS))
    messages = await stream_messages(nats_manager.jetstream)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        "ticket.created:i1:0",
        "ticket.updated:i1:1",
    ]


async def test_events_left_by_a_dead_process_are_sent_by_the_next_one(clean_db, nats_manager):
    # what a process that died right after its write leaves behind
    dead = Outbox(clean_db, RecordingNats(), [ITEMS])
    dead.nats.is_connected = False
    for n in range(250):  # more than one page of the relay's scan
        await add(dead, f"i{n:03}")
    assert await unsent_count(clean_db, [ITEMS]) == 250

    successor = Outbox(clean_db, nats_manager, [ITEMS], interval=0.1)
    await successor.start()
    try:
        await eventually(lambda: outbox_drained(clean_db, ITEMS))
    finally:
        await successor.stop()
    messages = await stream_messages(nats_manager.jetstream)
    assert sorted(m.headers["Nats-Msg-Id"] for m in messages) == [
        f"ticket.created:i{n:03}:0" for n in range(250)
    ]


async def test_an_event_published_twice_is_stored_once(outbox, clean_db, nats_manager):
    doc = await add(outbox)
    stored = await clean_db[ITEMS].find_one({"_id": "i1"})
    stored[PENDING] = [{"id": "ticket.created:i1:0", "subject": "ticket.created", "data": "{}"}]
    assert await outbox.deliver(ITEMS, stored)  # e.g. its clear was lost, then a re-scan
    assert len(await stream_messages(nats_manager.jetstream)) == 1
    assert doc["version"] == 0


async def test_only_declared_collections_carry_an_outbox(outbox):
    with pytest.raises(ValueError, match="not an outbox collection"):
        await outbox.insert("other", {"_id": "1"}, created({"_id": "1", "title": "a"}))


class SlowClears:
    """The database, with the outbox's clears held until `release` is set (a
    clear that takes longer than the relay's rescan age, as under load)."""

    def __init__(self, db) -> None:
        self.db = db
        self.release = asyncio.Event()
        self.held = asyncio.Event()

    def __getitem__(self, name: str):
        collection = self.db[name]
        outer = self

        class Collection:
            def __getattr__(self, attr: str):
                return getattr(collection, attr)

            async def update_many(self, *args, **kwargs):
                outer.held.set()
                await outer.release.wait()
                return await collection.update_many(*args, **kwargs)

        return Collection()


async def test_the_relay_does_not_republish_what_is_being_cleared(clean_db):
    """Under load the clear of acknowledged events can take longer than the relay's
    rescan age; the relay must not publish those events again meanwhile (it did: a
    re-publish storm on a database already behind)."""
    db = SlowClears(clean_db)
    box = Outbox(db, RecordingNats(), [ITEMS])  # type: ignore[arg-type]
    attempts: list[str] = []
    publish = box.nats.jetstream.publish

    async def counting_publish(subject, payload=b"", **kwargs):
        attempts.append(kwargs["headers"]["Nats-Msg-Id"])
        return await publish(subject, payload, **kwargs)

    box.nats.jetstream.publish = counting_publish  # type: ignore[method-assign]
    await add(box, "i1")
    assert attempts == ["ticket.created:i1:0"]  # the request published it
    clearing = asyncio.create_task(box._clear())
    await db.held.wait()  # the clear is in flight, its events no longer in _sent
    box.rescan_after = box.rescan_after * 0  # every pending event is "old" now
    assert await box.flush() == 0
    assert attempts == ["ticket.created:i1:0"]  # not published again
    db.release.set()
    await clearing
    assert await unsent_count(clean_db, [ITEMS]) == 0
