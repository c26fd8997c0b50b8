"""Listeners against a REAL nats-server (and, for replicas, the REAL MongoDB-wire
server): ack, redelivery, poison, invalid payloads, slow handlers, failing acks,
out-of-order and duplicated versions, replicas sharing a durable."""

import asyncio
import logging
import uuid

import pytest
from nats.js.api import AckPolicy

from common.events import (
    STREAM_NAME,
    Listener,
    TicketCreatedEvent,
    TicketUpdatedEvent,
    publish,
    publish_raw,
)
from common.mongo import VersionConflict
from common.replica import apply_in_order
from testkit.waiting import eventually


def new_service() -> str:
    return f"test-{uuid.uuid4().hex[:8]}-service"


class FlakyListener(Listener[TicketCreatedEvent]):
    """Fails its first `fail_times` deliveries, then succeeds."""

    event = TicketCreatedEvent
    max_deliver = 3
    retry_delay = 0.05
    poll_seconds = 0.2

    def __init__(self, nats, fail_times: int = 0, service: str | None = None) -> None:
        super().__init__(nats, service or new_service())
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
    listener = await start(FlakyListener(nats_manager))
    await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
    await eventually(lambda: consumer_settled(listener, 1))
    assert listener.handled == [TicketCreatedEvent(**TICKET)]


async def test_consumer_is_durable_with_explicit_ack_and_limits(nats_manager, start):
    listener = await start(FlakyListener(nats_manager))
    info = await nats_manager.jetstream.consumer_info(STREAM_NAME, listener.durable)
    assert info.config.durable_name == listener.durable
    assert info.config.ack_policy == AckPolicy.EXPLICIT
    assert info.config.max_deliver == 3
    assert info.config.ack_wait == 30
    assert info.config.filter_subject == "ticket.created"


async def test_handler_error_means_redelivery_until_success(nats_manager, start):
    listener = await start(FlakyListener(nats_manager, fail_times=2))
    await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
    await eventually(lambda: consumer_settled(listener, 3))
    assert len(listener.deliveries) == 3
    assert listener.handled == [TicketCreatedEvent(**TICKET)]  # exactly once in effect


async def test_poison_message_is_terminated_after_max_deliver_and_logged(
    nats_manager, start, caplog
):
    listener = await start(FlakyListener(nats_manager, fail_times=99))
    with caplog.at_level(logging.WARNING):
        await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
        await eventually(lambda: consumer_settled(listener, 3))
        # Another message still flows: the poison one no longer blocks anything.
        listener.fail_times = 0
        await publish(nats_manager.jetstream, TicketCreatedEvent(**{**TICKET, "id": "t2"}))
        await eventually(lambda: consumer_settled(listener, 4))
    assert len(listener.deliveries) == 4
    assert [e.id for e in listener.handled] == ["t2"]
    poison = [r for r in caplog.records if "poison message" in r.getMessage()]
    assert len(poison) == 1
    assert "msg_id=ticket.created:t1:0" in poison[0].getMessage()


class RacingListener(FlakyListener):
    """Loses a version race on its first delivery (a concurrent writer changed the
    document), then succeeds."""

    async def on_message(self, data: TicketCreatedEvent, msg) -> None:
        self.deliveries.append(data)
        if len(self.deliveries) == 1:
            raise VersionConflict()
        self.handled.append(data)


async def test_a_lost_version_race_is_one_info_line_and_a_retry(nats_manager, start, caplog):
    listener = await start(RacingListener(nats_manager))
    with caplog.at_level(logging.INFO, logger="common.events.listener"):
        await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
        await eventually(lambda: consumer_settled(listener, 2))
    assert listener.handled == [TicketCreatedEvent(**TICKET)]
    races = [r for r in caplog.records if "lost a version race" in r.getMessage()]
    assert len(races) == 1
    assert races[0].levelno == logging.INFO and races[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"id": "t1"}', b'{"id":"t1","version":0,"title":"A","price":-5,"userId":"u"}'],
)
async def test_invalid_payload_is_terminated_at_once_and_logged(
    nats_manager, start, caplog, payload
):
    listener = await start(FlakyListener(nats_manager))
    with caplog.at_level(logging.ERROR):
        await nats_manager.jetstream.publish(
            "ticket.created", payload, headers={"Nats-Msg-Id": f"bad-{uuid.uuid4().hex}"}
        )
        await eventually(lambda: consumer_settled(listener, 1))
    assert listener.deliveries == []
    assert any("invalid payload, terminated" in r.getMessage() for r in caplog.records)


async def test_replicas_sharing_a_durable_each_message_is_handled_once(nats_manager, start):
    service = new_service()  # two replicas of one service
    first = await start(FlakyListener(nats_manager, service=service))
    second = await start(FlakyListener(nats_manager, service=service))
    for n in range(20):
        await publish(nats_manager.jetstream, TicketCreatedEvent(**{**TICKET, "id": f"t{n}"}))
    await eventually(lambda: consumer_settled(first, 20))
    handled = sorted(e.id for e in first.handled + second.handled)
    assert handled == sorted(f"t{n}" for n in range(20))


class SlowListener(FlakyListener):
    """Takes 2.5 times the consumer's ack wait for every message."""

    ack_wait = 1.0

    def __init__(self, nats, service: str) -> None:
        super().__init__(nats, service=service)
        self.started: list[str] = []

    async def on_message(self, data: TicketCreatedEvent, msg) -> None:
        self.started.append(data.id)
        await asyncio.sleep(2.5)
        await super().on_message(data, msg)


async def test_a_handler_slower_than_the_ack_wait_is_kept_alive_not_redelivered(
    nats_manager, start
):
    service = new_service()
    slow = await start(SlowListener(nats_manager, service))
    await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
    await eventually(lambda: slow.started == ["t1"])
    # an idle replica, fetching all along: it would get the message once the ack wait
    # ran out, unless the slow replica keeps it alive
    idle = await start(FlakyListener(nats_manager, service=service))
    await eventually(lambda: len(slow.handled) == 1)
    await eventually(lambda: consumer_settled(slow, 1))
    assert idle.deliveries == []
    info = await nats_manager.jetstream.consumer_info(STREAM_NAME, slow.durable)
    assert info.num_redelivered == 0


class AckFailsOnceListener(FlakyListener):
    """The first ack raises (as when the connection drops at that instant)."""

    ack_wait = 1.0

    async def on_message(self, data: TicketCreatedEvent, msg) -> None:
        await super().on_message(data, msg)
        if len(self.deliveries) == 1:

            async def broken_ack() -> None:
                raise ConnectionResetError("connection lost while acking")

            msg.ack = broken_ack


async def test_an_ack_that_raises_is_logged_and_the_redelivery_is_acked_unhandled(
    nats_manager, start, caplog
):
    listener = await start(AckFailsOnceListener(nats_manager))
    with caplog.at_level(logging.INFO):
        await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
        # not acked: redelivered after the ack wait, and acked then ...
        await eventually(lambda: consumer_settled(listener, 2))
        await publish(nats_manager.jetstream, TicketCreatedEvent(**{**TICKET, "id": "t2"}))
        await eventually(lambda: consumer_settled(listener, 3))
    assert listener.running
    # ... without running the handler a second time: it had succeeded
    assert [e.id for e in listener.deliveries] == ["t1", "t2"]
    assert listener.outcomes["redelivery_skipped"] == 1
    assert any("ack failed" in r.getMessage() for r in caplog.records)
    assert any("handled already" in r.getMessage() for r in caplog.records)


class CrashingListener(FlakyListener):
    """Never settles a message: what a replica that died mid-handling looks like."""

    ack_wait = 0.5
    max_deliver = 2

    async def handle(self, msg) -> None:
        self.deliveries.append(msg)


async def test_running_out_of_deliveries_is_logged_as_a_poison_message(nats_manager, start, caplog):
    listener = await start(CrashingListener(nats_manager))
    with caplog.at_level(logging.ERROR):
        await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
        await eventually(
            lambda: any("ran out of deliveries" in r.getMessage() for r in caplog.records)
        )
    [poison] = [r for r in caplog.records if "ran out of deliveries" in r.getMessage()]
    assert "msg_id=ticket.created:t1:0" in poison.getMessage()
    assert len(listener.deliveries) == 2


class ReplicaListener(Listener[TicketUpdatedEvent]):
    """Keeps a replica of tickets, in version order (ticket.updated only: version 0 is
    inserted by the test, as a ticket.created listener would)."""

    event = TicketUpdatedEvent
    ahead_delay = 0.05
    poll_seconds = 0.2

    def __init__(self, nats, collection) -> None:
        super().__init__(nats, new_service())
        self.collection = collection
        self.applied: list[int] = []

    async def on_message(self, data: TicketUpdatedEvent, msg) -> None:
        if await apply_in_order(self.collection, data.id, data.version, {"title": data.title}):
            self.applied.append(data.version)


async def test_versions_apply_in_order_whatever_order_and_duplicates_arrive(
    nats_manager, start, clean_db
):
    await apply_in_order(clean_db.replica, "t1", 0, {"title": "v0"})
    listener = await start(ReplicaListener(nats_manager, clean_db.replica))
    arrivals = [3, 1, 2, 1, 3, 2]  # early versions, and duplicates past the dedupe window
    for n, version in enumerate(arrivals):
        event = TicketUpdatedEvent(**{**TICKET, "version": version, "title": f"v{version}"})
        # a msg id of its own: a re-send the stream's dedupe window no longer catches
        await publish_raw(
            nats_manager.jetstream, event.subject, event.encode(), f"{event.message_id()}#{n}", 5
        )
    await eventually(lambda: consumer_settled_at_least(listener, len(arrivals)))
    assert listener.applied == [1, 2, 3]
    assert await clean_db.replica.find_one({"_id": "t1"}) == {
        "_id": "t1",
        "title": "v3",
        "version": 3,
    }


async def consumer_settled_at_least(listener: Listener, messages: int) -> bool:
    """All `messages` were handled for good (acked), however often each was delivered."""
    info = await listener.js.consumer_info(STREAM_NAME, listener.durable)
    return (
        info.ack_floor.stream_seq >= messages
        and info.num_ack_pending == 0
        and info.num_pending == 0
    )


async def pulling(nats_manager, listener) -> bool:
    info = await nats_manager.jetstream.consumer_info(STREAM_NAME, listener.durable)
    return info.num_waiting > 0


class PatientListener(FlakyListener):
    """Long polls: a message must still be handled when it arrives, not when the poll
    expires."""

    poll_seconds = 60.0


async def test_a_lone_message_is_handled_when_it_arrives_not_when_the_poll_expires(
    nats_manager, start
):
    listener = await start(PatientListener(nats_manager))
    await eventually(lambda: pulling(nats_manager, listener))  # waiting in its 60 s pull
    await publish(nats_manager.jetstream, TicketCreatedEvent(**TICKET))
    # A lone message must not wait for a batch to fill or the pull to expire (60 s).
    await eventually(lambda: len(listener.handled) == 1, within=15)
