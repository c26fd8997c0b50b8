"""The outbox on a REAL MongoDB-wire server and a REAL nats-server: one write carries the
change and its event, and nothing writes it again; publish, versions in order,
conflicts, the relay healing what a request could not send, and a dead writer's events
sent by the next process, each once on the stream. (The tickets service's live and
fault tests prove the same through HTTP, with NATS killed under load.)"""

import asyncio
import json
from collections import Counter

import pytest
from pymongo import AsyncMongoClient, monitoring

from common.events import (
    DUPLICATE_WINDOW_SECONDS,
    STREAM_NAME,
    TicketCreatedEvent,
    TicketUpdatedEvent,
)
from common.mongo import VersionConflict
from common.outbox import PENDING, WRITERS, Outbox, unsent_count
from common.outbox import ledger as ledger_module
from common.settings import NatsSettings
from testkit.fakes import RecordingNats
from testkit.streams import outbox_drained, running_outbox, stream_messages
from testkit.waiting import eventually

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


async def _equals(awaitable, expected) -> bool:
    return await awaitable == expected


def msg_ids(messages) -> list[str]:
    return [m.headers["Nats-Msg-Id"] for m in messages]


@pytest.fixture
async def outbox(clean_db, nats_manager):
    async with running_outbox(clean_db, nats_manager, [ITEMS]) as box:
        yield box


def down() -> RecordingNats:
    """NATS as a process sees it while the server is unreachable."""
    nats = RecordingNats()
    nats.is_connected = False
    return nats


class WriteCounter(monitoring.CommandListener):
    """Counts the write commands a client sends, by (command, collection)."""

    def __init__(self) -> None:
        self.writes: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in {"insert", "update", "delete", "findAndModify"}:
            self.writes[(event.command_name, event.command[event.command_name])] += 1

    def succeeded(self, event) -> None: ...

    def failed(self, event) -> None: ...


async def test_insert_stores_the_event_in_the_document_and_publishes_it(
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
    [entry] = (await clean_db[ITEMS].find_one({"_id": "i1"}))[PENDING]
    assert (entry["id"], entry["w"], entry["n"]) == ("ticket.created:i1:0", outbox.writer, 0)
    await eventually(lambda: outbox_drained(clean_db, ITEMS))  # by the writer's mark


async def test_a_create_is_one_database_write_and_the_heartbeat_is_the_only_other(
    mongo_server, nats_manager
):
    """The insert carries the event; nothing writes the document again. What else the
    outbox writes is its heartbeat: one small write per interval, whatever the load."""
    counter = WriteCounter()
    client = AsyncMongoClient(mongo_server.uri, event_listeners=[counter], tz_aware=True)
    db = client["one_write"]
    box = Outbox(db, nats_manager, [ITEMS], interval=0.5)
    await box.start()
    try:
        await asyncio.gather(*(add(box, f"i{n}") for n in range(300)))
        first = await db[ITEMS].find_one({"_id": "i0"})
        await eventually(lambda: counter.writes[("update", WRITERS)] >= 2)  # two heartbeats
    finally:
        await box.stop()
        await client.drop_database("one_write")
        await client.close()
    assert counter.writes[("insert", ITEMS)] == 300
    assert counter.writes[("update", ITEMS)] == 0  # no clear write
    assert 1 <= counter.writes[("update", WRITERS)] <= 4  # heartbeats
    assert len(await stream_messages(nats_manager.jetstream)) == 300
    assert len(first[PENDING]) == 1


async def test_update_is_one_write_versioned_and_drops_the_sent_entries(
    outbox, clean_db, nats_manager
):
    await add(outbox)
    doc = await clean_db[ITEMS].find_one({"_id": "i1"})  # as read: with its _outbox
    for n in range(1000):  # an entity updated 1,000 times does not carry 1,000 events
        await outbox.update(ITEMS, doc, {"title": f"t{n}"}, updated)
        doc = await clean_db[ITEMS].find_one({"_id": "i1"})
    assert [e["id"] for e in doc[PENDING]] == ["ticket.updated:i1:1000"]
    with pytest.raises(VersionConflict):  # a stale read
        await outbox.update(ITEMS, {**doc, "version": 3}, {"title": "lost?"}, updated)
    stale = {key: value for key, value in doc.items() if key != PENDING}
    await outbox.update(ITEMS, stale, {"title": "b"}, updated)  # no _outbox: read by id
    with pytest.raises(VersionConflict):
        await outbox.update(ITEMS, stale, {"title": "lost?"}, updated)
    assert (await clean_db[ITEMS].find_one({"_id": "i1"}))["title"] == "b"
    versions = [
        json.loads(m.data)["version"] for m in await stream_messages(nats_manager.jetstream)
    ]
    assert versions == list(range(1002))


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
    assert outbox.unsent() == 2
    await eventually(lambda: _equals(unsent_count(clean_db, [ITEMS]), 1))  # the row's mark
    [stored] = await clean_db[ITEMS].find().to_list()
    assert [e["id"] for e in stored[PENDING]] == ["ticket.created:i1:0", "ticket.updated:i1:1"]
    nats_server.restart()
    await eventually(lambda: outbox_drained(clean_db, ITEMS))
    assert outbox.unsent() == 0
    assert msg_ids(await stream_messages(nats_manager.jetstream)) == [
        "ticket.created:i1:0",
        "ticket.updated:i1:1",
    ]


async def test_past_what_it_remembers_the_relay_rescans_for_its_events(
    outbox, clean_db, nats_manager, nats_server, monkeypatch
):
    monkeypatch.setattr(ledger_module, "MAX_REMEMBERED", 3)
    nats_server.stop()
    await eventually(lambda: not nats_manager.is_connected)
    for n in range(10):
        await add(outbox, f"i{n}")
    assert len(outbox.ledger.failed) == 3 and outbox.ledger.rescan is not None
    nats_server.restart()
    await eventually(lambda: outbox.unsent() == 0)
    assert sorted(msg_ids(await stream_messages(nats_manager.jetstream))) == [
        f"ticket.created:i{n}:0" for n in range(10)
    ]


async def test_a_dead_writers_events_are_sent_by_a_live_one_each_once(clean_db, nats_manager):
    """A process dies (no stop: SIGKILL) after 50 of its events were published and
    before its heartbeat said so, and with 250 more unsent (NATS was down for it). A
    live writer adopts it once its heartbeat has been silent `dead_after`: it sends
    all 300 again, and the stream keeps each once (deduplicated by id)."""
    dead = Outbox(clean_db, RecordingNats(), [ITEMS])
    await dead.start()  # registered; its heartbeat stops with it
    await dead.relay._heart.stop()
    await dead.relay._loop.stop()
    for n in range(50):
        await add(dead, f"sent{n:03}")
    for message in dead.relay.nats.jetstream.published:  # those 50 reached the real stream
        await nats_manager.jetstream.publish(
            message.subject, json.dumps(message.data).encode(), headers=message.headers
        )
    dead.relay.nats.is_connected = False
    for n in range(250):  # more than one page of the scan
        await add(dead, f"unsent{n:03}")
    assert (await clean_db[WRITERS].find_one({"_id": dead.writer}))["mark"] == 0

    heir = Outbox(clean_db, nats_manager, [ITEMS], interval=0.1, dead_after=0.5)
    await heir.start()
    try:
        await eventually(lambda: outbox_drained(clean_db, ITEMS))
        await eventually(lambda: _no_row(clean_db, dead.writer))
    finally:
        await heir.stop()
    ids = msg_ids(await stream_messages(nats_manager.jetstream))
    assert len(ids) == len(set(ids)) == 300
    assert heir.published["ticket.created"] == 300  # all sent again; the stream kept one each


async def _no_row(db, writer: str) -> bool:
    return await db[WRITERS].count_documents({"_id": writer}) == 0


def test_a_resend_comes_within_the_streams_duplicate_window():
    """The longest gap between an event's first publish and a re-send by another
    process stays inside the window in which JetStream drops the repeat, with the
    defaults and with the largest `dead_after` the settings accept."""
    fields = NatsSettings.model_fields
    for dead_after in (fields["outbox_dead_after"].default, fields["outbox_dead_after"].metadata):
        if not isinstance(dead_after, float):
            dead_after = next(m.le for m in dead_after if hasattr(m, "le"))
        box = Outbox(
            None,  # type: ignore[arg-type]
            RecordingNats(),
            [ITEMS],
            publish_timeout=fields["publish_timeout"].default,
            interval=fields["outbox_interval"].default,
            dead_after=dead_after,
        )
        assert box.longest_resend_gap() < DUPLICATE_WINDOW_SECONDS


async def test_the_window_is_the_streams_and_settings_past_it_are_refused(clean_db, nats_manager):
    info = await nats_manager.jetstream.stream_info(STREAM_NAME)
    assert info.config.duplicate_window == DUPLICATE_WINDOW_SECONDS
    late = Outbox(clean_db, nats_manager, [ITEMS], dead_after=DUPLICATE_WINDOW_SECONDS)
    with pytest.raises(ValueError, match="duplicate window"):
        await late.start()


async def test_a_stopped_process_with_unsent_events_is_adopted_at_once(clean_db, nats_manager):
    first = Outbox(clean_db, down(), [ITEMS])
    await first.start()
    await add(first, "i1")
    await first.stop()  # NATS still down for it: its row is flagged, not deleted
    assert (await clean_db[WRITERS].find_one({"_id": first.writer}))["stopped"] is True
    second = Outbox(clean_db, nats_manager, [ITEMS], interval=0.1)  # dead_after 30 s
    await second.start()
    try:
        await eventually(lambda: outbox_drained(clean_db, ITEMS), within=10)
    finally:
        await second.stop()
    assert msg_ids(await stream_messages(nats_manager.jetstream)) == ["ticket.created:i1:0"]
    assert await clean_db[WRITERS].count_documents({}) == 0  # both left when done


async def test_a_stalled_writer_beats_before_it_records_and_carries_on_if_adopted(outbox, clean_db):
    await add(outbox, "i1")
    first = outbox.writer
    outbox.writers.beat_at -= (
        outbox.writers.fence + 1
    )  # a stall: the heartbeat is too old to record on
    await clean_db[WRITERS].delete_one({"_id": first})  # and another process adopted it
    await add(outbox, "i2")
    assert outbox.writer != first
    assert await clean_db[WRITERS].count_documents({"_id": outbox.writer}) == 1
    [entry] = (await clean_db[ITEMS].find_one({"_id": "i2"}))[PENDING]
    assert entry["w"] == outbox.writer


async def test_replicas_updating_one_document_keep_it_small(clean_db, nats_manager):
    a = Outbox(clean_db, nats_manager, [ITEMS], interval=0.05)
    b = Outbox(clean_db, nats_manager, [ITEMS], interval=0.05)
    await a.start()
    await b.start()
    try:
        await add(a)
        for n in range(60):
            doc = await clean_db[ITEMS].find_one({"_id": "i1"})
            await (a if n % 2 else b).update(ITEMS, doc, {"title": f"t{n}"}, updated)
            await asyncio.sleep(0.02)  # the heartbeats move the marks on
        doc = await clean_db[ITEMS].find_one({"_id": "i1"})
    finally:
        await a.stop()
        await b.stop()
    assert len(doc[PENDING]) <= 8  # a few not yet known as sent, not 61
    versions = [
        json.loads(m.data)["version"] for m in await stream_messages(nats_manager.jetstream)
    ]
    assert versions == list(range(61))


async def test_a_write_that_failed_is_looked_for_and_sent_only_if_it_landed(
    outbox, clean_db, nats_manager
):
    class Flaky:
        """The database answering an error AFTER writing (a lost reply)."""

        def __getitem__(self, name):
            collection = clean_db[name]

            class Collection:
                def __getattr__(self, attr):
                    return getattr(collection, attr)

                async def insert_one(self, doc):
                    await collection.insert_one(doc)
                    raise TimeoutError("the reply was lost")

            return Collection()

    real_db, outbox.db = outbox.db, Flaky()
    with pytest.raises(TimeoutError):
        await add(outbox, "landed")
    outbox.db = real_db
    await eventually(lambda: outbox.unsent() == 0)
    assert msg_ids(await stream_messages(nats_manager.jetstream)) == ["ticket.created:landed:0"]


async def test_an_event_published_twice_is_stored_once(outbox, clean_db, nats_manager):
    await add(outbox)
    stored = await clean_db[ITEMS].find_one({"_id": "i1"})
    assert await outbox.relay.deliver(ITEMS, "i1", stored[PENDING])  # e.g. an adopter re-sending it
    assert len(await stream_messages(nats_manager.jetstream)) == 1


async def test_only_declared_collections_carry_an_outbox(outbox):
    with pytest.raises(ValueError, match="not an outbox collection"):
        await outbox.insert("other", {"_id": "1"}, created({"_id": "1", "title": "a"}))
