"""The recorded corpus (`corpus.jsonl`: real messages of the previous release and of
this one, as the stream held them after buyers traded through both) read as today's
code reads the stream: by every current listener, by the auditor, and replayed on a
real stream through the services that build their replicas from events — with the
same outcome as the same messages published natively (this release's version)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from common.audit import DEFAULT_MARGIN, stories, violations
from common.events import (
    EVENT_MODELS,
    SCHEMA_HEADER,
    Subject,
    read_event,
    read_payload,
    schema_header,
)
from common.nats_client import NatsClientManager
from contract.corpus import Recorded, load
from contract.fleet import Fleet
from contract.rolling import drained
from expiration.listeners import LISTENERS as EXPIRATION
from harness.servers import MongoServer, NatsServer
from orders.listeners import LISTENERS as ORDERS
from payments.listeners import LISTENERS as PAYMENTS
from testkit.waiting import eventually
from tickets.listeners import LISTENERS as TICKETS

CORPUS = load()
LISTENERS = [*TICKETS, *ORDERS, *PAYMENTS, *EXPIRATION]
# a refund follows money captured for an order that did not complete: only a fault
# makes one (the storms do, RELIABILITY.md); a dispute, only a card holder's bank
NOT_RECORDED = {Subject.PAYMENT_REFUNDED, Subject.PAYMENT_DISPUTED}


def native(record: Recorded) -> Recorded:
    """The same message as this release publishes it: its newest version, saying so."""
    model = EVENT_MODELS[Subject(record.subject)]
    event = read_event(model, record.data, record.headers)
    headers = {**record.headers, **schema_header(record.subject, model.schema_version)}
    return Recorded(record.subject, headers, event.encode(), record.at)


def test_the_corpus_holds_both_releases_messages():
    subjects = {Subject(r.subject) for r in CORPUS}
    assert subjects == set(EVENT_MODELS) - NOT_RECORDED
    cancelled = {r.headers.get(SCHEMA_HEADER) for r in CORPUS if r.subject == "order.cancelled"}
    assert cancelled == {None, "order.cancelled/2"}


def test_every_current_listener_reads_every_message_as_its_native_twin():
    read = 0
    for record in CORPUS:
        twin = native(record)
        readers = [it for it in LISTENERS if it.event.subject.value == record.subject]
        for listener in readers:
            event = read_event(listener.event, record.data, record.headers)  # as it does
            assert event == read_event(listener.event, twin.data, twin.headers), record
            read += 1
    assert read > len(CORPUS)  # most subjects have several listeners


def test_the_auditor_finds_nothing_in_the_corpus():
    events = [
        (r.subject, read_payload(r.subject, r.data, r.headers), r.at)
        for r in CORPUS
        if r.subject.startswith(("order.", "payment."))
    ]
    orders = stories(events)
    later = max(at for _, _, at in events) + timedelta(hours=1)  # every order long over
    assert len(orders) >= 12
    assert violations(orders, now=later, margin=DEFAULT_MARGIN) == []


async def replay(records: list[Recorded], workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """The records published on a fresh stream to orders, payments and expiration
    (the services whose state here comes from events alone: their replicas); returns
    those replicas once every consumer has acknowledged everything."""
    with NatsServer(workdir / "nats") as nats, MongoServer(workdir / "mongo") as mongo:
        manager = NatsClientManager()
        await manager.connect(nats.url, "replay")
        await manager.ensure_stream()
        fleet = Fleet(mongo.uri, nats.url, workdir).start(only=("orders", "payments", "expiration"))
        try:
            for record in records:
                await manager.jetstream.publish(record.subject, record.data, headers=record.headers)
            await eventually(lambda: drained(manager.jetstream), within=60)
            assert await asyncio.to_thread(fleet.failed_deliveries) == 0
            assert fleet.logged(r"terminated|poison") == []
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.uri)
            try:
                return {
                    "orders' tickets": await client.orders.tickets.find().sort("_id").to_list(),
                    "payments' orders": await client.payments.orders.find().sort("_id").to_list(),
                }
            finally:
                await client.close()
        finally:
            fleet.stop()
            await manager.drain()


async def test_replayed_on_a_real_stream_it_builds_what_its_native_twin_builds(tmp_path):
    events_only = [r for r in CORPUS if r.subject.startswith(("ticket.", "order."))]
    recorded = await replay(events_only, tmp_path / "recorded")
    twin = await replay([native(r) for r in events_only], tmp_path / "native")
    assert recorded == twin
    assert len(recorded["orders' tickets"]) >= 24 and len(recorded["payments' orders"]) >= 12
