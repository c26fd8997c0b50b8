"""Publishers against a REAL nats-server (JetStream), and against the recording fake."""

import json

import pytest
from pydantic import ValidationError

from ticketing_common.events import (
    STREAM_NAME,
    Publisher,
    PublishError,
    Subject,
    TicketCreatedEvent,
    TicketUpdatedEvent,
)
from ticketing_common.nats_client import NatsClientManager
from ticketing_common.testing.streams import stream_messages


class TicketCreatedPublisher(Publisher[TicketCreatedEvent]):
    subject = Subject.TICKET_CREATED


class TicketUpdatedPublisher(Publisher[TicketUpdatedEvent]):
    subject = Subject.TICKET_UPDATED


TICKET = {"id": "t1", "version": 0, "title": "Concert", "price": 20.5, "userId": "u1"}


async def test_publish_stores_exact_payload_and_dedupe_header(nats_manager: NatsClientManager):
    ack = await TicketCreatedPublisher(nats_manager.jetstream).publish(TICKET)
    assert ack.stream == STREAM_NAME
    assert not ack.duplicate

    [msg] = await stream_messages(nats_manager.jetstream)
    assert msg.subject == "ticket.created"
    assert json.loads(msg.data) == TICKET
    assert msg.headers["Nats-Msg-Id"] == "ticket.created:t1:0"


async def test_republishing_the_same_event_is_deduplicated(nats_manager: NatsClientManager):
    publisher = TicketCreatedPublisher(nats_manager.jetstream)
    await publisher.publish(TICKET)
    second = await publisher.publish(TicketCreatedEvent(**TICKET))
    assert second.duplicate is True
    assert len(await stream_messages(nats_manager.jetstream)) == 1


async def test_a_new_version_is_a_new_message(nats_manager: NatsClientManager):
    publisher = TicketUpdatedPublisher(nats_manager.jetstream)
    await publisher.publish({**TICKET, "version": 1})
    await publisher.publish({**TICKET, "version": 2, "orderId": "o1"})
    messages = await stream_messages(nats_manager.jetstream)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        "ticket.updated:t1:1",
        "ticket.updated:t1:2",
    ]
    assert json.loads(messages[1].data)["orderId"] == "o1"


async def test_invalid_payload_is_rejected_before_anything_is_sent(nats_manager):
    with pytest.raises(ValidationError):
        await TicketCreatedPublisher(nats_manager.jetstream).publish({**TICKET, "price": -1})
    assert await stream_messages(nats_manager.jetstream) == []


async def test_publish_without_a_stream_raises_a_clear_error(nats_manager):
    await nats_manager.jetstream.delete_stream(STREAM_NAME)
    try:
        with pytest.raises(
            PublishError,
            match=r"publishing ticket.created \(Nats-Msg-Id ticket.created:t1:0\) failed",
        ):
            await TicketCreatedPublisher(nats_manager.jetstream, timeout=1).publish(TICKET)
    finally:
        await nats_manager.ensure_stream()


async def test_publish_times_out_with_a_clear_error_when_server_is_gone(nats_server):
    manager = NatsClientManager()
    await manager.connect(nats_server.url, "timeout-test")
    await manager.ensure_stream()
    nats_server.stop()
    try:
        with pytest.raises(PublishError, match="ticket.created:t1:0"):
            await TicketCreatedPublisher(manager.jetstream, timeout=0.5).publish(TICKET)
    finally:
        nats_server.restart()
        await manager.drain()


async def test_recording_fake_records_what_would_be_published(recording_nats):
    await TicketCreatedPublisher(recording_nats.jetstream).publish(TICKET)
    assert recording_nats.payloads("ticket.created") == [TICKET]
    assert recording_nats.published[0].headers == {"Nats-Msg-Id": "ticket.created:t1:0"}


async def test_recording_fake_can_simulate_a_failure(recording_nats):
    recording_nats.jetstream.fail_with = TimeoutError()
    with pytest.raises(PublishError):
        await TicketCreatedPublisher(recording_nats.jetstream).publish(TICKET)
    assert recording_nats.published == []
