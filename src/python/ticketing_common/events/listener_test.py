"""Listeners against a REAL nats-server: ack, redelivery, poison, invalid payloads."""

import logging
import uuid

import pytest
from nats.js.api import AckPolicy

from ticketing_common.events import STREAM_NAME, Listener, Publisher, Subject, TicketCreatedEvent
from ticketing_common.testing.waiting import eventually


class TicketCreatedPublisher(Publisher[TicketCreatedEvent]):
    subject = Subject.TICKET_CREATED


class FlakyListener(Listener[TicketCreatedEvent]):
    """Fails its first `fail_times` deliveries, then succeeds."""

    subject = Subject.TICKET_CREATED
    max_deliver = 3
    retry_delay = 0.05
    poll_seconds = 0.2

    def __init__(self, js, fail_times: int = 0) -> None:
        super().__init__(js, f"test-{uuid.uuid4().hex[:8]}-service")
        self.fail_times = fail_times
        self.deliveries: list[TicketCreatedEvent] = []
        self.handled: list[TicketCreatedEvent] = []

    async def on_message(self, data: TicketCreatedEvent, msg) -> None:
        self.deliveries.append(data)
        if len(self.deliveries) <= self.fail_times:
            raise RuntimeError("handler failed on purpose")
        self.handled.append(data)


TICKET = {"id": "t1", "version": 0, "title": "Concert", "price": 20, "userId": "u1"}


async def consumer_settled(listener: Listener, expected_delivered: int) -> bool:
    """Every message was delivered `expected_delivered` times in all and nothing is pending."""
    info = await listener.js.consumer_info(STREAM_NAME, listener.durable)
    return (
        info.delivered.consumer_seq == expected_delivered
        and info.num_ack_pending == 0
        and info.num_pending == 0
    )


@pytest.fixture
async def start(nats_manager):
    started: list[Listener] = []

    async def _start(listener: Listener) -> Listener:
        await listener.start()
        started.append(listener)
        return listener

    yield _start
    for listener in started:
        await listener.stop()


async def test_success_is_acked_once_with_the_typed_payload(nats_manager, start):
    listener = await start(FlakyListener(nats_manager.jetstream))
    await TicketCreatedPublisher(nats_manager.jetstream).publish(TICKET)
    await eventually(lambda: consumer_settled(listener, 1))
    assert listener.handled == [TicketCreatedEvent(**TICKET)]


async def test_consumer_is_durable_with_explicit_ack_and_limits(nats_manager, start):
    listener = await start(FlakyListener(nats_manager.jetstream))
    info = await nats_manager.jetstream.consumer_info(STREAM_NAME, listener.durable)
    assert info.config.durable_name == listener.durable
    assert info.config.ack_policy == AckPolicy.EXPLICIT
    assert info.config.max_deliver == 3
    assert info.config.ack_wait == 30
    assert info.config.filter_subject == "ticket.created"


async def test_handler_error_means_redelivery_until_success(nats_manager, start):
    listener = await start(FlakyListener(nats_manager.jetstream, fail_times=2))
    await TicketCreatedPublisher(nats_manager.jetstream).publish(TICKET)
    await eventually(lambda: consumer_settled(listener, 3))
    assert len(listener.deliveries) == 3
    assert listener.handled == [TicketCreatedEvent(**TICKET)]  # exactly once in effect


async def test_poison_message_is_terminated_after_max_deliver_and_logged(
    nats_manager, start, caplog
):
    listener = await start(FlakyListener(nats_manager.jetstream, fail_times=99))
    with caplog.at_level(logging.WARNING):
        await TicketCreatedPublisher(nats_manager.jetstream).publish(TICKET)
        await eventually(lambda: consumer_settled(listener, 3))
        # Another message still flows: the poison one no longer blocks anything.
        listener.fail_times = 0
        await TicketCreatedPublisher(nats_manager.jetstream).publish({**TICKET, "id": "t2"})
        await eventually(lambda: consumer_settled(listener, 4))
    assert len(listener.deliveries) == 4
    assert [e.id for e in listener.handled] == ["t2"]
    poison = [r for r in caplog.records if "poison message" in r.getMessage()]
    assert len(poison) == 1
    assert "msg_id=ticket.created:t1:0" in poison[0].getMessage()


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"id": "t1"}', b'{"id":"t1","version":0,"title":"A","price":-5,"userId":"u"}'],
)
async def test_invalid_payload_is_terminated_at_once_and_logged(
    nats_manager, start, caplog, payload
):
    listener = await start(FlakyListener(nats_manager.jetstream))
    with caplog.at_level(logging.ERROR):
        await nats_manager.jetstream.publish(
            "ticket.created", payload, headers={"Nats-Msg-Id": f"bad-{uuid.uuid4().hex}"}
        )
        await eventually(lambda: consumer_settled(listener, 1))
    assert listener.deliveries == []
    assert any("invalid payload, terminated" in r.getMessage() for r in caplog.records)


async def test_replicas_sharing_a_durable_each_message_is_handled_once(nats_manager, start):
    first = FlakyListener(nats_manager.jetstream)
    second = FlakyListener(nats_manager.jetstream)
    second.service, second.durable = first.service, first.durable  # two replicas, one service
    await start(first)
    await start(second)
    publisher = TicketCreatedPublisher(nats_manager.jetstream)
    for n in range(20):
        await publisher.publish({**TICKET, "id": f"t{n}"})
    await eventually(lambda: consumer_settled(first, 20))
    handled = sorted(e.id for e in first.handled + second.handled)
    assert handled == sorted(f"t{n}" for n in range(20))
