"""The outbox: a committed change always gets its event, in version order, deduplicated.

"Save, then publish" loses the event if the process dies (or NATS is down) in between.
Here the event is stored IN the document it describes, by the same single-document
write that makes the change (MongoDB applies one document's write atomically: no
multi-document transaction, one round trip):

    doc = await outbox.insert("tickets", doc, TicketCreatedEvent(...))
    doc = await outbox.update("tickets", doc, {"title": t}, lambda new: TicketUpdatedEvent(...))

The document's `_outbox` array holds its unsent events, oldest first. Right after the
write the caller publishes them (awaiting JetStream's ack, bounded by the publish
timeout: the seed's "awaiting publication"); the sent ones are then cleared from their
documents in batches, off the request path (one write for many documents). The
relay scans every `interval` seconds for events left unsent (NATS was down, the
process died after the write, the wait ran out) and publishes them, many documents at
once (pipelined), one document's events in order.

Each event keeps its `Nats-Msg-Id`, so one published twice (by two replicas, or sent
but not yet cleared) is stored once by JetStream within its 2-minute window; past that
window consumers drop it by version (`common.replica.apply_in_order`), or by id for
once-only events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from common.events.contracts import Event
from common.events.publisher import DEFAULT_PUBLISH_TIMEOUT, PublishError, publish_raw
from common.mongo import Document, VersionConflict
from common.tasks import Loop
from common.tracing import current_carrier

log = logging.getLogger(__name__)

PENDING = "_outbox"
"""The field of a document that holds its unsent events: [{id, subject, data, at,
trace?}] (`trace`: the trace context it was recorded in, `common.tracing`)."""

# collection -> document id -> ids of its events acknowledged by JetStream
SentEvents = dict[str, dict[Any, list[str]]]

PENDING_INDEX = IndexModel(f"{PENDING}.at", name="outbox_pending", sparse=True)
"""Lets the relay find documents with old unsent events without a collection scan."""

CLEAR_BATCH_WAIT = 0.05
"""Seconds the clearer lets acknowledged events gather, so one write clears many."""


class JetStreamSource(Protocol):
    """What the outbox needs of the client manager (or of the recording fake)."""

    @property
    def jetstream(self) -> Any: ...

    @property
    def is_connected(self) -> bool: ...

    async def ensure_stream(self) -> Any: ...


def pending_event(event: Event) -> Document:
    """How an event waits in its document's `_outbox` (validated when built), with the
    trace it was recorded in: whoever publishes it, and when, continues that trace."""
    pending: Document = {
        "id": event.message_id(),
        "subject": event.subject.value,
        "data": event.encode().decode(),
        "at": datetime.now(UTC),
    }
    if carrier := current_carrier():
        pending["trace"] = carrier
    return pending


def without_outbox(doc: Document) -> Document:
    """The document as its service sees it (the pending events are the outbox's)."""
    return {key: value for key, value in doc.items() if key != PENDING}


async def find_by_id(collection: AsyncCollection[Document], doc_id: Any) -> Document | None:
    """The document with this `_id` as its service sees it. Read whole and its pending
    events dropped here, not by a projection: the projection costs the MongoDB-wire
    stand-in ~100 µs of CPU per read, a fifth of the read (BENCHMARKS.md, session 7)."""
    doc = await collection.find_one({"_id": doc_id})
    if doc is not None:
        doc.pop(PENDING, None)
    return doc


def outbox_indexes(collections: Iterable[str]) -> dict[str, list[IndexModel]]:
    return {collection: [PENDING_INDEX] for collection in collections}


async def unsent_count(db: AsyncDatabase[Any], collections: Iterable[str]) -> int:
    """How many documents hold events not yet acknowledged by JetStream."""
    query = {f"{PENDING}.0": {"$exists": True}}
    return sum([await db[c].count_documents(query) for c in collections])


class Outbox:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        nats: JetStreamSource,
        collections: Sequence[str],
        *,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        interval: float = 1.0,
        batch_size: int = 200,
    ) -> None:
        self.db = db
        self.nats = nats
        self.collections = tuple(collections)
        self.publish_timeout = publish_timeout
        self.interval = interval
        self.batch_size = batch_size
        # An event younger than this is its request's to publish (the request gives up
        # after the publish timeout): the relay does not race it.
        self.rescan_after = timedelta(seconds=publish_timeout + 1)
        self.published: Counter[str] = Counter()  # events acked by JetStream, by subject
        self._sent: SentEvents = defaultdict(lambda: defaultdict(list))
        self._clearing: list[SentEvents] = []  # taken from _sent, their clear in flight
        self._wake = asyncio.Event()  # run the relay now
        self._clear_wake = asyncio.Event()  # something was sent: clear it
        self._relay = Loop("outbox-relay", self._relay_step, pause=interval)
        self._clearer = Loop("outbox-clear", self._clear_step, pause=interval)

    # -- recording (the one call a service makes) -----------------------------------

    async def insert(self, collection: str, doc: Document, event: Event) -> Document:
        """Insert `doc` with `event` pending in it, then publish the event (bounded
        wait). Returns the document as inserted, without the outbox field."""
        self._check(collection)
        stored = {**doc, PENDING: [pending_event(event)]}
        await self.db[collection].insert_one(stored)
        await self.deliver(collection, stored)
        return without_outbox(stored)

    async def update(
        self,
        collection: str,
        doc: Document,
        changes: Mapping[str, Any],
        event: Callable[[Document], Event],
    ) -> Document:
        """Apply `changes` (top-level fields) to `doc` only if it is still at the version
        it was read at, bump `version`, and record `event(new_doc)` with it — one
        atomic write. Raises VersionConflict (409) if another writer got there first.
        Then publishes the document's pending events, oldest first (bounded wait)."""
        self._check(collection)
        version = doc["version"]
        new_doc = {**without_outbox(doc), **changes, "version": version + 1}
        result = await self.db[collection].update_one(
            {"_id": doc["_id"], "version": version},
            {
                "$set": dict(changes),
                "$inc": {"version": 1},
                "$push": {PENDING: pending_event(event(new_doc))},
            },
        )
        if result.matched_count == 0:
            raise VersionConflict()
        # Its pending events as they stand now, ours last, read back by _id. (One
        # find_one_and_update would do both, but the MongoDB-wire stand-in scans the
        # whole collection for it: 24 ms at 1,000 documents, 446 ms at 20,000, measured;
        # an update and a read by _id cost 1-2 ms each on it at any size.)
        stored = await self.db[collection].find_one({"_id": doc["_id"]}, {PENDING: 1})
        updated = {**new_doc, PENDING: (stored or {}).get(PENDING) or []}
        await self.deliver(collection, updated)
        return without_outbox(updated)

    async def oldest_unsent_at(self) -> datetime | None:
        """When the oldest event still waiting to be sent was recorded (None: none
        waits). One indexed query per collection (`outbox_pending`)."""
        oldest: datetime | None = None
        for collection in self.collections:
            first = await (
                self.db[collection]
                .find({f"{PENDING}.at": {"$exists": True}}, {f"{PENDING}.at": 1})
                .sort(f"{PENDING}.at", 1)
                .limit(1)
                .to_list()
            )
            for doc in first:
                at = min(event["at"] for event in doc[PENDING])
                at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
                oldest = at if oldest is None or at < oldest else oldest
        return oldest

    async def stuck(self, bound: timedelta) -> bool:
        """An event has waited longer than `bound` to be sent (NATS unreachable for
        long, the stream full or refusing): `/readyz` reports it."""
        oldest = await self.oldest_unsent_at()
        return oldest is not None and oldest < datetime.now(UTC) - bound

    def _check(self, collection: str) -> None:
        if collection not in self.collections:
            raise ValueError(f"{collection!r} is not an outbox collection {self.collections}")

    # -- publishing ---------------------------------------------------------------

    async def deliver(self, collection: str, doc: Document) -> bool:
        """Publish `doc`'s pending events in order and wait (bounded) for the acks.
        True when all were acked; False leaves them to the relay."""
        if not self.nats.is_connected:
            self._wake.set()  # nothing to wait for: the relay sends them when NATS is back
            return False
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self._publish_document(collection, doc)
        except (TimeoutError, PublishError) as exc:
            log.warning("events of %s %s left to the relay: %s", collection, doc["_id"], exc)
            if isinstance(exc, PublishError) and exc.stream_missing:
                self._wake.set()  # the relay recreates the stream and sends them
            return False
        return True

    async def _publish_document(self, collection: str, doc: Document) -> int:
        """One document's events, one after another: JetStream stores them in the order
        it acks them, so versions of one aggregate never overtake each other. Events
        this process has had acked already (not yet cleared from the document) are
        not sent again. Returns how many were sent."""
        acked = self._acked(collection, doc["_id"])
        sent = 0
        for pending in doc.get(PENDING) or ():
            if pending["id"] in acked:
                continue
            await publish_raw(
                self.nats.jetstream,
                pending["subject"],
                pending["data"].encode(),
                pending["id"],
                self.publish_timeout,
                trace=pending.get("trace"),
            )
            self.published[pending["subject"]] += 1
            self._sent[collection][doc["_id"]].append(pending["id"])
            self._clear_wake.set()
            sent += 1
        return sent

    async def flush(self) -> int:
        """Publish every event left pending (older than `rescan_after`), documents in
        parallel, each document's in order. Returns how many documents were sent.
        Raises PublishError/PyMongoError if some could not be (they stay pending)."""
        sent = 0
        cutoff = datetime.now(UTC) - self.rescan_after
        for collection in self.collections:
            after: Any = None
            while True:
                query: Document = {f"{PENDING}.at": {"$lte": cutoff}}
                if after is not None:
                    query["_id"] = {"$gt": after}
                page = (
                    await self.db[collection]
                    .find(query, {PENDING: 1})
                    .sort("_id", 1)
                    .limit(self.batch_size)
                    .to_list()
                )
                # (a document whose events were all acked here, awaiting their clear,
                # publishes none and is not counted)
                results = await asyncio.gather(
                    *(self._publish_document(collection, doc) for doc in page),
                    return_exceptions=True,
                )
                failures = [r for r in results if isinstance(r, BaseException)]
                sent += sum(1 for r in results if not isinstance(r, BaseException) and r)
                await self._clear()
                if failures:
                    raise failures[0]
                if len(page) < self.batch_size:
                    break
                after = page[-1]["_id"]
        return sent

    def _acked(self, collection: str, doc_id: Any) -> set[str]:
        """Ids of `doc_id`'s events acked to this process, not yet cleared."""
        return {
            event_id
            for sent in (self._sent, *self._clearing)
            for event_id in sent.get(collection, {}).get(doc_id, ())
        }

    # -- clearing what was sent -------------------------------------------------------

    async def _clear(self) -> None:
        """Remove acknowledged events from their documents: one write per collection
        for everything sent since the last clear (an update of many documents: measured
        a quarter cheaper for the MongoDB-wire stand-in than a bulk of one update per
        document; event ids are unique, so pulling them all from each is exact)."""
        sent, self._sent = self._sent, defaultdict(lambda: defaultdict(list))
        # Until the write lands, the relay must still see these as sent: under load a
        # clear can take longer than the relay's rescan age, and re-publishing what
        # it is clearing only adds work to a database that is already behind.
        self._clearing.append(sent)
        try:
            for collection, by_doc in sent.items():
                event_ids = [event_id for ids in by_doc.values() for event_id in ids]
                try:
                    await self.db[collection].update_many(
                        {"_id": {"$in": list(by_doc)}},
                        {"$pull": {PENDING: {"id": {"$in": event_ids}}}},
                    )
                except PyMongoError as exc:
                    # Not lost: they are re-sent (and deduplicated) by a later relay scan.
                    log.warning("outbox: could not clear %d sent event(s): %r", len(event_ids), exc)
        finally:
            self._clearing = [other for other in self._clearing if other is not sent]

    async def _clear_step(self) -> None:
        await self._clear_wake.wait()
        await asyncio.sleep(CLEAR_BATCH_WAIT)  # under load: many events, one write
        self._clear_wake.clear()
        await self._clear()

    # -- the relay ----------------------------------------------------------------

    async def start(self) -> None:
        self._clearer.start()
        self._relay.start()
        self._wake.set()  # events a previous process left pending go out now

    async def stop(self) -> None:
        """Stop the loops, then one last bounded attempt to send what is pending and
        to clear what was sent."""
        await self._relay.stop()
        await self._clearer.stop()
        if self.nats.is_connected:
            with contextlib.suppress(TimeoutError, PublishError, PyMongoError):
                async with asyncio.timeout(self.publish_timeout):
                    await self.flush()
        await self._clear()

    async def _relay_step(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._wake.wait()
        self._wake.clear()
        if not self.nats.is_connected:
            return
        try:
            sent = await self.flush()
        except PublishError as exc:
            if not exc.stream_missing:
                log.warning("outbox relay: will retry: %r", exc)
                return
            # Someone deleted the stream: make it again (per the contract) rather than
            # failing every publish until an operator notices.
            log.error("outbox relay: the stream is missing; creating it again")
            await self.nats.ensure_stream()
            self._wake.set()
            return
        except PyMongoError as exc:
            log.warning("outbox relay: will retry: %r", exc)
            return
        if sent:
            log.info("outbox relay published the pending events of %d document(s)", sent)
