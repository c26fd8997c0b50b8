"""The outbox: a committed change always gets its event, in version order, deduplicated,
for ONE database write per change.

"Save, then publish" loses the event if the process dies (or NATS is down) in between.
Here the event is stored IN the document it describes, by the same single-document
write that makes the change (MongoDB applies one document's write atomically: no
multi-document transaction, one round trip), then published at once, awaiting
JetStream's ack (bounded by the publish timeout: the original's "awaiting publication"):

    doc = await outbox.insert("tickets", doc, TicketCreatedEvent(...))
    doc = await outbox.update("tickets", doc, {"title": t}, lambda new: TicketUpdatedEvent(...))

What was sent is NOT written back to each document (that second write per change was
half the database's work). Instead every process is a *writer* with an id, and numbers
its events 0, 1, 2, ... (`w`, `n` in each pending entry). It keeps in memory which of
its events are not yet acknowledged, and its row in `outbox_writers` holds its *mark*:
every event of it numbered below the mark is on the stream. That row is rewritten once
per `interval` (the heartbeat): one small write per interval, not one per event.

- Its own failed publishes the relay re-sends from memory (a read by id each); past
  `MAX_REMEMBERED` it rescans the collections for its events from the oldest unsent.
- A writer whose heartbeat stops (crashed, SIGKILLed) for `dead_after` is adopted by
  any live one: its events from its mark on are sent again, then its row is deleted.
  A stopped process that could not send everything flags its row so it is adopted at
  once. A writer can only record while its heartbeat is fresh (`fence`), so nothing
  it writes can land after an adopter has looked.
- Sent entries leave a document with its next update (which rewrites the array anyway:
  still one write), so a document carries its last event and any unsent ones, never a
  history. Entries of writers with no row any more were adopted: they are sent.

A re-send (adoption, a retry whose first try was stored but not acknowledged) is
deduplicated by JetStream through `Nats-Msg-Id` within the stream's duplicate window;
`longest_resend_gap` bounds how late a re-send can come and `start` refuses settings
that would exceed the window. Past it, consumers drop a repeat by version
(`common.replica.apply_in_order`) or by id for once-only events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from common.events.contracts import DUPLICATE_WINDOW_SECONDS, Event
from common.events.publisher import DEFAULT_PUBLISH_TIMEOUT, PublishError, publish_raw
from common.mongo import Document, VersionConflict
from common.observability.tracing import current_carrier
from common.tasks import Loop

log = logging.getLogger(__name__)

PENDING = "_outbox"
"""The field of a document that holds its recent events: [{id, subject, data, at, w, n,
trace?}] (`w`, `n`: the writer and its number for the event; `trace`: the trace
context it was recorded in, `common.observability.tracing`)."""

WRITERS = "outbox_writers"
"""One row per live writer (process): {_id, mark, beat, at, host, stopped?}."""

MAX_REMEMBERED = 10_000
"""Failed publishes a process remembers one by one; past this (a long NATS outage) it
rescans its collections instead, so memory stays bounded."""

RESEND_WITH_UPDATE = timedelta(seconds=60)
"""An update sends the document's earlier not-yet-acknowledged entries first (the
stream keeps one aggregate's versions in order) only if younger than this: within the
duplicate window, so a repeat is deduplicated. Older ones are their writer's (or its
adopter's) to send."""


class JetStreamSource(Protocol):
    """What the outbox needs of the client manager (or of the recording fake)."""

    @property
    def jetstream(self) -> Any: ...

    @property
    def is_connected(self) -> bool: ...

    async def ensure_stream(self) -> Any: ...


@dataclass(frozen=True)
class Unsent:
    """An event of this process whose publish failed: where it is, to send it again."""

    collection: str
    doc_id: Any
    n: int
    at: datetime


def pending_event(event: Event, writer: str | None = None, n: int = 0) -> Document:
    """How an event waits in its document (validated when built), numbered by its
    writer, with the trace it was recorded in: whoever publishes it, and when,
    continues that trace. (No writer: as before writers existed.)"""
    entry: Document = {
        "id": event.message_id(),
        "subject": event.subject.value,
        "data": event.encode().decode(),
        "at": datetime.now(UTC),
    }
    if writer is not None:
        entry["w"], entry["n"] = writer, n
    if carrier := current_carrier():
        entry["trace"] = carrier
    return entry


def without_outbox(doc: Document) -> Document:
    """The document as its service sees it (the pending events are the outbox's)."""
    return {key: value for key, value in doc.items() if key != PENDING}


async def find_by_id(collection: Any, doc_id: Any) -> Document | None:
    """The document with this `_id`, read whole: its `_outbox` is what lets an update of
    it drop the sent entries in the same write (responses are built field by field and
    never show it). No projection: it costs the MongoDB-wire stand-in ~100 µs of CPU
    per read, a fifth of the read."""
    return await collection.find_one({"_id": doc_id})


def outbox_indexes(collections: Iterable[str]) -> dict[str, list[Any]]:
    """None: the outbox's queries by writer run only after a crash or an overflow, and
    an index on the array would cost every insert about half again."""
    return {}


def _earliest(
    rescan: tuple[int, datetime] | None, other: tuple[int, datetime]
) -> tuple[int, datetime]:
    """The earlier start (number and time) of two rescans."""
    if rescan is None:
        return other
    return min(rescan[0], other[0]), min(rescan[1], other[1])


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def unsent_count(db: AsyncDatabase[Any], collections: Iterable[str]) -> int:
    """How many documents hold events not yet acknowledged by JetStream, as the writers'
    rows last said (a scan: for tests and the bench, not for the request path)."""
    marks = {row["_id"]: row["mark"] for row in await db[WRITERS].find().to_list()}
    count = 0
    for collection in collections:
        cursor = db[collection].find({f"{PENDING}.0": {"$exists": True}}, {PENDING: 1})
        async for doc in cursor:
            count += any(_unsent_by(entry, marks) for entry in doc[PENDING])
    return count


def _unsent_by(entry: Document, marks: Mapping[str, int]) -> bool:
    """Not yet on the stream as far as the writers' marks say (a writer with no row
    was adopted: its events were sent; an entry with no writer predates them)."""
    writer = entry.get("w")
    if writer is None:
        return True
    return writer in marks and entry["n"] >= marks[writer]


class Outbox:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        nats: JetStreamSource,
        collections: Sequence[str],
        *,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        interval: float = 1.0,
        fence: float = 10.0,
        dead_after: float = 30.0,
        batch_size: int = 200,
    ) -> None:
        self.db = db
        self.nats = nats
        self.collections = tuple(collections)
        self.publish_timeout = publish_timeout
        self.interval = interval  # relay retries and heartbeats
        self.fence = fence  # record only within this long of the last heartbeat
        self.dead_after = dead_after  # a silent writer is adopted after this
        self.batch_size = batch_size
        self.published: Counter[str] = Counter()  # events acked by JetStream, by subject
        self.writer = ""  # this process's id in `outbox_writers` (set when registered)
        self._ids: set[str] = set()  # every id it had (a new one if it was adopted)
        self._next = 0  # the number of this process's next event
        self._in_flight: dict[int, datetime] = {}  # written or being written, not acked
        self._failed: dict[str, Unsent] = {}  # by event id, for the relay
        # past MAX_REMEMBERED: rescan from (number, when recorded) of the oldest forgotten
        self._rescan: tuple[int, datetime] | None = None
        self._scanning: tuple[int, datetime] | None = None  # a rescan under way: the same
        self._beat_at: float | None = None  # monotonic time of the last heartbeat sent
        self._others: dict[str, int] = {}  # other live writers' marks
        self._gone: set[str] = set()  # writers adopted: all their events were sent
        self._beating = asyncio.Lock()  # one heartbeat (or registration) at a time
        self._unnumbered_sent = False  # entries of the format before writers: sent?
        self._silent: dict[str, tuple[int, float]] = {}  # writer -> (beat, seen since)
        self._wake = asyncio.Event()  # run the relay now
        self._relay = Loop("outbox-relay", self._relay_step, pause=interval)
        self._heart = Loop("outbox-beat", self._beat_step, pause=interval)

    def longest_resend_gap(self) -> float:
        """Seconds between an event's first publish and its latest re-send by another
        process: an adopter looks `dead_after` after the last heartbeat it saw change
        (one interval to see it), and re-sends what was in flight up to a publish
        timeout before that heartbeat."""
        return self.dead_after + 2 * self.interval + self.publish_timeout

    # -- recording (the calls a service makes) ----------------------------------------

    async def insert(self, collection: str, doc: Document, event: Event) -> Document:
        """Insert `doc` with `event` pending in it, then publish the event (bounded
        wait). Returns the document as inserted, without the outbox field."""
        self._check(collection)
        entry = await self._new_entry(event)
        stored = {**doc, PENDING: [entry]}
        try:
            await self.db[collection].insert_one(stored)
        except DuplicateKeyError:
            self._in_flight.pop(entry["n"], None)  # refused: nothing was written
            raise
        except BaseException:
            self._fail(collection, doc["_id"], entry)  # it may have landed: look again
            raise
        await self._deliver_new(collection, stored, entry)
        return without_outbox(stored)

    async def update(
        self,
        collection: str,
        doc: Document,
        changes: Mapping[str, Any],
        event: Callable[[Document], Event],
    ) -> Document:
        """Apply `changes` (top-level fields) to `doc` only if it is still at the version
        it was read at, bump `version`, record `event(new_doc)` and drop the entries
        already sent — one atomic write. Raises VersionConflict (409) if another writer
        got there first. Then publishes the new event, after the document's earlier
        unacknowledged ones (bounded wait). `doc` as read, with its `_outbox`; without
        it (a projection dropped it) the outbox reads it by id first."""
        self._check(collection)
        version = doc["version"]
        pending = doc.get(PENDING) if PENDING in doc else await self._pending_of(collection, doc)
        new_doc = {**without_outbox(doc), **changes, "version": version + 1}
        kept = [old for old in pending or () if not await self._was_sent(old)]
        entry = await self._new_entry(event(new_doc))  # (in flight from here on)
        try:
            result = await self.db[collection].update_one(
                {"_id": doc["_id"], "version": version},
                {"$set": {**changes, PENDING: [*kept, entry]}, "$inc": {"version": 1}},
            )
        except BaseException:
            self._fail(collection, doc["_id"], entry)
            raise
        if result.matched_count == 0:
            self._in_flight.pop(entry["n"], None)
            raise VersionConflict()
        resend_after = datetime.now(UTC) - RESEND_WITH_UPDATE
        earlier = [old for old in kept if (at := old.get("at")) and _aware(at) > resend_after]
        await self._deliver_new(collection, {"_id": doc["_id"], PENDING: [*earlier, entry]}, entry)
        return new_doc

    async def _pending_of(self, collection: str, doc: Document) -> list[Document]:
        stored = await self.db[collection].find_one({"_id": doc["_id"]}, {PENDING: 1, "version": 1})
        if stored is None or stored.get("version") != doc["version"]:
            raise VersionConflict()
        return stored.get(PENDING) or []

    def _check(self, collection: str) -> None:
        if collection not in self.collections:
            raise ValueError(f"{collection!r} is not an outbox collection {self.collections}")

    async def _new_entry(self, event: Event) -> Document:
        """The event as it waits in its document, numbered by this writer: only while
        the heartbeat is fresh (the fence: see the module's docstring)."""
        if self._beat_at is None or time.monotonic() - self._beat_at > self.fence:
            await self._beat()  # raises PyMongoError (503) if the database is away
        entry = pending_event(event, self.writer, self._next)
        self._in_flight[self._next] = entry["at"]
        self._next += 1
        return entry

    async def _was_sent(self, entry: Document) -> bool:
        """Known to be on the stream: below its writer's mark, or its writer adopted."""
        writer = entry.get("w")
        if writer not in (None, self.writer, *self._others, *self._gone):
            await self._read_writers()  # a writer newer than our last look, or adopted
            if writer not in self._others:
                self._gone.add(writer)
        return not _unsent_by(entry, {**self._others, self.writer: self.mark()})

    # -- what this process has not sent -----------------------------------------------

    def mark(self) -> int:
        """Every event of this writer numbered below this is on the stream."""
        rescans = [r[0] for r in (self._rescan, self._scanning) if r is not None]
        return min([*self._in_flight, *(u.n for u in self._failed.values()), *rescans, self._next])

    def unsent(self) -> int:
        """Events of this process that failed to publish and wait for the relay (past
        MAX_REMEMBERED: at least that many)."""
        return len(self._failed) + (self._rescan is not None) + (self._scanning is not None)

    def oldest_unsent_at(self) -> datetime | None:
        """When the oldest of them was recorded (None: none waits)."""
        rescans = [r[1] for r in (self._rescan, self._scanning) if r is not None]
        return min([*(u.at for u in self._failed.values()), *rescans], default=None)

    def stuck(self, bound: timedelta) -> bool:
        """An event has waited longer than `bound` to be sent (NATS unreachable for
        long, the stream full or refusing): `/readyz` reports it."""
        oldest = self.oldest_unsent_at()
        return oldest is not None and oldest < datetime.now(UTC) - bound

    def _fail(self, collection: str, doc_id: Any, entry: Document) -> None:
        self._in_flight.pop(entry["n"], None)
        if entry["id"] in self._failed:
            return
        if len(self._failed) < MAX_REMEMBERED:
            self._failed[entry["id"]] = Unsent(collection, doc_id, entry["n"], entry["at"])
        else:
            self._rescan = _earliest(self._rescan, (entry["n"], entry["at"]))
        self._wake.set()

    def _sent(self, entry: Document) -> None:
        self.published[entry["subject"]] += 1
        self._failed.pop(entry["id"], None)
        if entry.get("w") in self._ids:
            self._in_flight.pop(entry["n"], None)

    # -- publishing ---------------------------------------------------------------------

    async def _deliver_new(self, collection: str, doc: Document, entry: Document) -> None:
        if not await self.deliver(collection, doc):
            self._fail(collection, doc["_id"], entry)

    async def deliver(self, collection: str, doc: Document) -> bool:
        """Publish `doc`'s given pending entries in order and wait (bounded) for the
        acks. True when all were acked; False leaves them to the relay."""
        if not self.nats.is_connected:
            return False  # nothing to wait for: the relay sends them when NATS is back
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self._publish(doc[PENDING])
        except (TimeoutError, PublishError) as exc:
            log.warning("events of %s %s left to the relay: %s", collection, doc["_id"], exc)
            return False
        return True

    async def _publish(self, entries: Iterable[Document]) -> None:
        """One document's entries, one after another: JetStream stores them in the order
        it acks them, so versions of one aggregate never overtake each other."""
        for entry in entries:
            await publish_raw(
                self.nats.jetstream,
                entry["subject"],
                entry["data"].encode(),
                entry["id"],
                self.publish_timeout,
                trace=entry.get("trace"),
            )
            self._sent(entry)

    async def flush(self) -> int:
        """Send what this process failed to send, then (if it forgot some) rescan for
        them; the first time, also what the format before writers left unsent. Returns
        how many documents were read to do it. Raises PublishError or PyMongoError if
        some could not be sent (they stay unsent)."""
        read = 0
        if not self._unnumbered_sent:
            read += await self._send_writers_events(None)
            self._unnumbered_sent = True
        read += await self._resend_failed()
        if self._rescan is not None:
            # what overflows during the scan starts the next one
            self._scanning, self._rescan = self._rescan, None
            try:
                read += await self._send_writers_events(self.writer, self._scanning[0])
            except BaseException:
                self._rescan = _earliest(self._rescan, self._scanning)
                raise
            finally:
                self._scanning = None
        return read

    async def _resend_failed(self) -> int:
        """The remembered failures, a page at a time: their documents read by id (one
        query per collection), each one's unsent entries published in order, documents
        in parallel. A failure whose entry is not in its document was never written."""
        read = 0
        while page := list(self._failed.items())[: self.batch_size]:
            by_collection: dict[str, list[tuple[str, Unsent]]] = {}
            for event_id, unsent in page:
                by_collection.setdefault(unsent.collection, []).append((event_id, unsent))
            for collection, failures in by_collection.items():
                ids = list({unsent.doc_id for _, unsent in failures})
                docs = await self.db[collection].find({"_id": {"$in": ids}}, {PENDING: 1}).to_list()
                stored = {e["id"] for doc in docs for e in doc.get(PENDING) or ()}
                for event_id, _ in failures:
                    if event_id not in stored:
                        self._failed.pop(event_id, None)
                await self._publish_docs(
                    [[e for e in doc.get(PENDING) or () if e["id"] in self._failed] for doc in docs]
                )
                read += len(docs)
        return read

    async def _publish_docs(self, entry_lists: list[list[Document]]) -> None:
        results = await asyncio.gather(
            *(self._publish(entries) for entries in entry_lists if entries),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _send_writers_events(self, writer: str | None, start: int = 0) -> int:
        """Publish every event of `writer` numbered `start` or more found in the
        collections (None: entries recorded before writers existed), in pages of
        documents sent in parallel. A scan: only after a crash or an overflow."""
        if writer is None:
            match: Document = {"w": {"$exists": False}}
        else:
            match = {"w": writer, "n": {"$gte": start}}
        read = 0
        for collection in self.collections:
            cursor = self.db[collection].find(
                {PENDING: {"$elemMatch": match}},
                {PENDING: 1, "version": 1},
                batch_size=self.batch_size,
            )
            page: list[Document] = []
            async for doc in cursor:
                page.append(doc)
                if len(page) >= self.batch_size:
                    read += await self._send_page(collection, page, writer, start)
                    page = []
            read += await self._send_page(collection, page, writer, start)
        return read

    async def _send_page(
        self, collection: str, page: list[Document], writer: str | None, start: int
    ) -> int:
        def ours(entry: Document) -> bool:
            if writer is None:
                return "w" not in entry
            return entry.get("w") == writer and entry["n"] >= start

        await self._publish_docs([[e for e in doc[PENDING] if ours(e)] for doc in page])
        if writer is None:  # sent: drop them, so no later update keeps them
            for doc in page:
                await self.db[collection].update_one(
                    {"_id": doc["_id"], "version": doc.get("version")},
                    {"$pull": {PENDING: {"w": {"$exists": False}}}},
                )
        return len(page)

    # -- the writers' rows: heartbeat, marks, adoption ----------------------------------

    async def _register(self) -> None:
        self.writer = uuid.uuid4().hex[:16]
        self._ids.add(self.writer)
        await self.db[WRITERS].insert_one(
            {
                "_id": self.writer,
                "mark": self._next,
                "beat": 0,
                "at": datetime.now(UTC),
                "host": f"{socket.gethostname()}:{os.getpid()}",
            }
        )
        log.info("outbox: writer %s registered", self.writer)

    async def _beat(self) -> None:
        """Say this writer lives, and its mark. If others adopted it meanwhile (it was
        silent past `dead_after`: a stall), it carries on as a new writer: what it had
        recorded was sent by the adopter."""
        async with self._beating:
            if self._beat_at is not None and time.monotonic() - self._beat_at < self.interval / 2:
                return  # a request's fence check beat just now
            sent_at = time.monotonic()
            if not self.writer:
                await self._register()
            else:
                result = await self.db[WRITERS].update_one(
                    {"_id": self.writer},
                    {"$set": {"mark": self.mark(), "at": datetime.now(UTC)}, "$inc": {"beat": 1}},
                )
                if result.matched_count == 0:
                    log.error("outbox: writer %s was adopted by another process", self.writer)
                    self._gone.add(self.writer)
                    await self._register()
            self._beat_at = sent_at

    async def _read_writers(self) -> list[Document]:
        rows = await self.db[WRITERS].find({"_id": {"$ne": self.writer}}).to_list()
        self._others = {row["_id"]: row["mark"] for row in rows}
        return rows

    async def _beat_step(self) -> None:
        await asyncio.sleep(self.interval)
        try:
            await self._beat()
            now = time.monotonic()
            for row in await self._read_writers():
                beat, since = self._silent.get(row["_id"], (None, now))
                if row.get("stopped") or (beat == row["beat"] and now - since >= self.dead_after):
                    await self._adopt(row)
                elif beat != row["beat"]:
                    self._silent[row["_id"]] = (row["beat"], now)
        except (PyMongoError, PublishError, TimeoutError) as exc:  # a server away: next beat
            log.warning("outbox heartbeat: will retry: %r", exc)
        self._silent = {w: s for w, s in self._silent.items() if w in self._others}

    async def _adopt(self, row: Document) -> None:
        """Send a dead writer's events from its mark on, then delete its row (only if
        it did not beat meanwhile)."""
        if not self.nats.is_connected:
            return
        log.warning(
            "outbox: adopting writer %s (%s) from %d", row["_id"], row.get("host"), row["mark"]
        )
        await self._send_writers_events(row["_id"], row["mark"])
        await self.db[WRITERS].delete_one({"_id": row["_id"], "beat": row["beat"]})
        self._others.pop(row["_id"], None)
        self._silent.pop(row["_id"], None)
        self._gone.add(row["_id"])

    # -- the loops ----------------------------------------------------------------------

    async def start(self) -> None:
        if self.longest_resend_gap() >= DUPLICATE_WINDOW_SECONDS:
            raise ValueError(
                f"outbox: a re-send can come {self.longest_resend_gap():.0f}s after the first "
                f"publish, past the stream's {DUPLICATE_WINDOW_SECONDS:.0f}s duplicate window"
            )
        await self._beat()
        for collection in self.collections:  # the index of the format before writers
            with contextlib.suppress(OperationFailure):  # (gone: it cost every insert)
                await self.db[collection].drop_index("outbox_pending")
        self._heart.start()
        self._relay.start()

    async def stop(self) -> None:
        """Stop the loops, then one last bounded attempt to send what is unsent; then
        leave the writers' table (all sent) or flag this writer for adoption now."""
        await self._relay.stop()
        await self._heart.stop()
        if self.nats.is_connected:
            with contextlib.suppress(TimeoutError, PublishError, PyMongoError):
                async with asyncio.timeout(self.publish_timeout):
                    await self.flush()
        if not self.writer:
            return
        with contextlib.suppress(PyMongoError):
            if self.mark() >= self._next:
                await self.db[WRITERS].delete_one({"_id": self.writer})
            else:
                await self.db[WRITERS].update_one(
                    {"_id": self.writer}, {"$set": {"mark": self.mark(), "stopped": True}}
                )

    async def _relay_step(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._wake.wait()
        self._wake.clear()
        if not self.nats.is_connected:
            return
        if self._unnumbered_sent and not self._failed and self._rescan is None:
            return  # nothing unsent
        try:
            read = await self.flush()
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
        if read:
            log.info("outbox relay sent the unsent events of %d document(s)", read)
