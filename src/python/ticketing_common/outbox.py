"""Transactional outbox: an event is committed with the data change, then published.

"Save, then publish" loses the event if the process dies (or NATS is down) in between.
Here the change and an outbox record are written in ONE Mongo transaction; publishing
happens after the commit, from the outbox:

- the request handler calls `relay.deliver()` right after the commit, so in normal
  operation the response is sent only once JetStream has acked the event (bounded
  wait; concurrent requests share one flush);
- the relay also scans for unsent records every `interval` seconds (NATS was down, the
  process crashed after the commit, the bounded wait ran out) and publishes them.

Each record keeps its `Nats-Msg-Id`, so a record published twice (by two replicas, or
sent but not yet marked) is stored once by JetStream (within its 2-minute window).
Records of one aggregate are published in version order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from ticketing_common.events.contracts import Event, encode_event, message_id
from ticketing_common.events.publisher import Publisher, PublishError, publish_raw
from ticketing_common.mongo import VersionConflict

log = logging.getLogger(__name__)

OUTBOX = "outbox"
SENT_RECORDS_KEPT_SECONDS = 7 * 24 * 3600  # then Mongo's TTL monitor deletes them
OUTBOX_INDEXES = {
    OUTBOX: [
        IndexModel([("sentAt", ASCENDING), ("aggregate", ASCENDING), ("version", ASCENDING)]),
        IndexModel("sentAt", name="sent_ttl", expireAfterSeconds=SENT_RECORDS_KEPT_SECONDS),
    ]
}


class JetStreamSource(Protocol):
    """What the relay needs of the client manager (or of the recording fake)."""

    @property
    def jetstream(self) -> Any: ...

    @property
    def is_connected(self) -> bool: ...


@contextlib.asynccontextmanager
async def transaction(client: AsyncMongoClient[Any]) -> AsyncIterator[AsyncClientSession]:
    """A Mongo transaction: committed when the block ends, aborted if it raises.

    A write conflict with a concurrent transaction becomes VersionConflict (409):
    the other writer won, nothing of this one is applied."""
    try:
        async with client.start_session() as session:
            async with await session.start_transaction():
                yield session
    except OperationFailure as exc:
        if exc.has_error_label("TransientTransactionError"):
            raise VersionConflict() from exc
        raise


async def add_event(
    db: AsyncDatabase[Any],
    session: AsyncClientSession,
    publisher: type[Publisher[Any]],
    data: Event | Mapping[str, Any],
) -> str:
    """Record an event for `publisher`'s subject inside the caller's transaction (the
    payload is validated now); returns its id (the `Nats-Msg-Id`)."""
    subject, event = publisher.subject, publisher.build(data)
    msg_id = message_id(subject, event)
    await db[OUTBOX].insert_one(
        {
            "_id": msg_id,
            "subject": subject.value,
            "data": encode_event(event).decode(),
            "aggregate": str(getattr(event, "id", msg_id)),
            "version": int(getattr(event, "version", 0)),
            "createdAt": datetime.now(UTC),
            "sentAt": None,
        },
        session=session,
    )
    return msg_id


async def unsent_count(db: AsyncDatabase[Any]) -> int:
    """How many recorded events are not yet acknowledged by JetStream."""
    return await db[OUTBOX].count_documents({"sentAt": None})


class OutboxRelay:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        nats: JetStreamSource,
        *,
        publish_timeout: float = 5.0,
        interval: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self.db = db
        self.nats = nats
        self.publish_timeout = publish_timeout
        self.interval = interval
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._waiters: dict[str, asyncio.Future[None]] = {}  # msg_id -> resolved when sent

    async def deliver(self, msg_id: str) -> bool:
        """Have the relay publish now (the caller's record included) and wait at most
        `publish_timeout` for it. True once `msg_id` is sent; False leaves it to the
        relay's next attempts.

        Requests arriving together share one flush (group commit): under load the
        outbox is read once per batch of requests, not once per request.
        """
        if not self.nats.is_connected:
            self._wake.set()  # the relay retries; no point waiting on a dead link
            return False
        sent = asyncio.get_running_loop().create_future()
        self._waiters[msg_id] = sent
        self._wake.set()
        try:
            async with asyncio.timeout(self.publish_timeout):
                await asyncio.shield(sent)
        except TimeoutError:
            log.warning(
                "event %s left to the outbox relay (no ack in %ss)", msg_id, self.publish_timeout
            )
            return False
        finally:
            self._waiters.pop(msg_id, None)
        return True

    async def flush(self) -> int:
        """Publish unsent records in (aggregate, version) order until none is left or one
        fails (later records wait, so versions are never published out of order).
        Returns how many were sent. Only the relay's own task calls it (and `stop()`
        after that task has ended), so flushes never overlap."""
        sent = 0
        while True:
            batch = await self._pending()
            for record in batch:
                await publish_raw(
                    self.nats.jetstream,
                    record["subject"],
                    record["data"].encode(),
                    record["_id"],
                    self.publish_timeout,
                )
                await self.db[OUTBOX].update_one(
                    {"_id": record["_id"]}, {"$set": {"sentAt": datetime.now(UTC)}}
                )
                sent += 1
            if len(batch) < self.batch_size:
                return sent  # that was all of it

    async def _pending(self) -> list[dict[str, Any]]:
        cursor = (
            self.db[OUTBOX]
            .find({"sentAt": None})
            .sort([("aggregate", ASCENDING), ("version", ASCENDING)])
            .limit(self.batch_size)
        )
        return await cursor.to_list()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop the loop, then make one last bounded attempt to send what is pending."""
        self._stopping = True  # a flag as well: Python 3.11 can swallow a cancel in a timeout
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.nats.is_connected:
            with contextlib.suppress(TimeoutError, PublishError, PyMongoError):
                async with asyncio.timeout(self.publish_timeout):
                    await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            if not self.nats.is_connected:
                continue
            # Records of these waiters were committed before this flush reads the outbox:
            # after a complete flush each of them is sent (by us, or by another replica).
            waiting = list(self._waiters.values())
            try:
                sent = await self.flush()
            except (PublishError, PyMongoError) as exc:
                log.warning("outbox relay: will retry: %r", exc)
                continue
            for future in waiting:
                if not future.done():
                    future.set_result(None)
            if sent and not waiting:
                log.info("outbox relay published %d pending event(s)", sent)
