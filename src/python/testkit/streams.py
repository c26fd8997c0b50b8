"""Read back what is stored on the TICKETING stream, whether the outbox has sent
everything it recorded, and what a durable consumer was delivered."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from nats.js.api import RawStreamMsg
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from pymongo.asynchronous.database import AsyncDatabase

from common.events.contracts import STREAM_NAME, Event
from common.events.listener import Listener
from common.nats_client import NatsClientManager
from common.outbox import JetStreamSource, Outbox, unsent_count


async def stream_messages(js: JetStreamContext, subject: str | None = None) -> list[RawStreamMsg]:
    """Every message on the stream (optionally of one subject), in stream order."""
    info = await js.stream_info(STREAM_NAME)
    if info.state.messages == 0:
        return []
    messages = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            message = await js.get_msg(STREAM_NAME, seq)
        except NotFoundError:
            continue  # a gap: purged (e.g. a schedule that fired) or deleted
        if subject is None or message.subject == subject:
            messages.append(message)
    return messages


async def stream_payloads(js: JetStreamContext, subject: str | None = None) -> list[dict[str, Any]]:
    return [json.loads(m.data) for m in await stream_messages(js, subject)]


async def outbox_drained(db: AsyncDatabase[Any], *collections: str) -> bool:
    """Every event recorded in these outbox collections was acknowledged by JetStream."""
    return await unsent_count(db, collections) == 0


class CountingListener(Listener[Event]):
    """A durable consumer of `event` that counts what it handles, by `key` (default:
    the event's id): a count above 1 is a duplicate delivered to a consumer."""

    poll_seconds = 0.5

    def __init__(
        self,
        nats: NatsClientManager,
        event: type[Event],
        service: str,
        key: Callable[[Any], str | None] = lambda data: data.id,
    ) -> None:
        self.event = event  # type: ignore[misc]  # this instance's subject
        super().__init__(nats, service)
        self.key = key
        self.received: Counter[str] = Counter()

    async def on_message(self, data: Event, msg: Any) -> None:
        key = self.key(data)
        if key is not None:
            self.received[key] += 1

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.received.values() if count > 1)


async def caught_up(js: JetStreamContext, durable: str) -> bool:
    """The durable consumer was delivered every message of its subject and acked each:
    a duplicate on the stream would have reached its listener by now (what a test waits
    for instead of sleeping "until a duplicate would show")."""
    info = await js.consumer_info(STREAM_NAME, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


@asynccontextmanager
async def running_outbox(
    db: AsyncDatabase[Any], nats: JetStreamSource, collections: Sequence[str]
) -> AsyncIterator[Outbox]:
    """An outbox for a test, quick to notice (publish timeout 2 s, relay every 0.1 s),
    stopped afterwards."""
    box = Outbox(db, nats, collections, publish_timeout=2, interval=0.1)
    await box.start()
    try:
        yield box
    finally:
        await box.stop()
