"""Publishers against a REAL nats-server (JetStream), and against the recording fake."""

import json

import pytest
from pydantic import ValidationError

from common.events import (
    STREAM_NAME,
    PublishError,
    TicketCreatedEvent,
    TicketUpdatedEvent,
    publish,
)
from common.nats_client import NatsClientManager
from testkit.streams import stream_messages

TICKET = {"id": "t1", "version": 0, "title": "Concert", "price": 20.5, "userId": "u1"}


async def test_publish_stores_exact_payload_and_dedupe_header(nats_manager: NatsClientManager):
    ack = await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
    assert ack.stream == STREAM_NAME
    assert not ack.duplicate

    [msg] = await stream_messages(nats_manager.jetstream)
    assert msg.subject == "ticket.created"
    assert json.loads(msg.data) == TICKET
    assert msg.headers["Nats-Msg-Id"] == "ticket.created:t1:0"


async def test_republishing_the_same_event_is_deduplicated(nats_manager: NatsClientManager):
    await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
    second = await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
    assert second.duplicate is True
    assert len(await stream_messages(nats_manager.jetstream)) == 1


async def test_a_new_version_is_a_new_message(nats_manager: NatsClientManager):
    await publish(nats_manager.jetstream, TicketUpdatedEvent(**{**TICKET, "version": 1}))
    await publish(
        nats_manager.jetstream, TicketUpdatedEvent(**{**TICKET, "version": 2, "orderId": "o1"})
    )
    messages = await stream_messages(nats_manager.jetstream)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        "ticket.updated:t1:1",
        "ticket.updated:t1:2",
    ]
    assert json.loads(messages[1].data)["orderId"] == "o1"


async def test_an_invalid_payload_cannot_even_be_built(nats_manager):
    with pytest.raises(ValidationError):
        TicketCreatedEvent(**{**TICKET, "price": -1})
    assert await stream_messages(nats_manager.jetstream) == []


async def test_publish_without_a_stream_raises_a_clear_error(nats_manager):
    await nats_manager.jetstream.delete_stream(STREAM_NAME)
    try:
        with pytest.raises(
            PublishError,
            match=r"publishing ticket.created \(Nats-Msg-Id ticket.created:t1:0\) failed",
        ):
            await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET), timeout=1)
    finally:
        await nats_manager.ensure_stream()


async def test_publish_times_out_with_a_clear_error_when_server_is_gone(nats_server):
    manager = NatsClientManager()
    await manager.connect(nats_server.url, "timeout-test")
    await manager.ensure_stream()
    nats_server.stop()
    try:
        with pytest.raises(PublishError, match="ticket.created:t1:0"):
            await publish(manager.jetstream, TicketCreatedEvent(**TICKET), timeout=0.5)
    finally:
        nats_server.restart()
        await manager.drain()


async def test_recording_fake_records_what_would_be_published(recording_nats):
    await publish(recording_nats.jetstream, TicketCreatedEvent(**TICKET))
    assert recording_nats.payloads("ticket.created") == [TICKET]
    assert recording_nats.published[0].headers == {
        "Nats-Msg-Id": "ticket.created:t1:0",
        "Ticketing-Schema": "ticket.created/1",  # the payload's version
    }


async def test_recording_fake_can_simulate_a_failure(recording_nats):
    recording_nats.jetstream.fail_with = TimeoutError()
    with pytest.raises(PublishError):
        await publish(recording_nats.jetstream, TicketCreatedEvent(**TICKET))
    assert recording_nats.published == []
