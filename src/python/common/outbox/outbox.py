"""`Outbox`: what a service records through, and the outbox's life and state (the
design: this package's docstring)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from common.events.contracts import DUPLICATE_WINDOW_SECONDS, Event
from common.events.publisher import DEFAULT_PUBLISH_TIMEOUT
from common.mongo import Document, VersionConflict
from common.outbox.documents import PENDING, Stored, pending_event
from common.outbox.ledger import Ledger
from common.outbox.relay import JetStreamSource, Relay
from common.outbox.writers import Writers

RESEND_WITH_UPDATE = timedelta(seconds=60)
"""An update sends the document's earlier not-yet-acknowledged entries first (the
stream keeps one aggregate's versions in order) only if younger than this: within the
duplicate window, so a repeat is deduplicated. Older ones are their writer's (or its
adopter's) to send."""


class Outbox:
    """What a service records through (`insert`, `update`), and the outbox's life
    (`start`, `stop`) and state (`unsent`, `stuck`, `published`) for probes and metrics."""

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
        self.collections = tuple(collections)
        self.publish_timeout = publish_timeout
        self.interval = interval  # relay retries and heartbeats
        self.dead_after = dead_after
        self.ledger = Ledger()
        self.writers = Writers(
            db, self.ledger, interval=interval, fence=fence, dead_after=dead_after
        )
        self.relay = Relay(
            db,
            nats,
            self.collections,
            self.ledger,
            self.writers,
            publish_timeout=publish_timeout,
            interval=interval,
            batch_size=batch_size,
        )

    def longest_resend_gap(self) -> float:
        """Seconds between an event's first publish and its latest re-send by another
        process: an adopter looks `dead_after` after the last heartbeat it saw change
        (one interval to see it), and re-sends what was in flight up to a publish
        timeout before that heartbeat."""
        return self.dead_after + 2 * self.interval + self.publish_timeout

    # -- recording ----------------------------------------------------------------------

    async def insert(self, collection: str, doc: Document, event: Event) -> Stored:
        """Insert `doc` with `event` pending in it, then publish the event (bounded
        wait). Returns the document as inserted (its pending event kept aside)."""
        self._check(collection)
        entry = await self._new_entry(event)
        try:
            await self.db[collection].insert_one({**doc, PENDING: [entry]})
        except DuplicateKeyError:
            self.ledger.refused(entry)  # refused: nothing was written
            raise
        except BaseException:
            self.relay.failed(collection, doc["_id"], entry)  # it may have landed: look again
            raise
        await self.relay.send_new(collection, doc["_id"], [entry])
        return Stored.holding(doc, [entry])

    async def update(
        self,
        collection: str,
        doc: Document,
        changes: Mapping[str, Any],
        event: Callable[[Document], Event],
    ) -> Stored:
        """Apply `changes` (top-level fields) to `doc` only if it is still at the version
        it was read at, bump `version`, record `event(new_doc)` and drop the entries
        already sent — one atomic write. Raises VersionConflict (409) if another writer
        got there first. Then publishes the new event, after the document's earlier
        unacknowledged ones (bounded wait). `doc` as `get_by_id` or this outbox returned
        it; a document read otherwise costs one more read (by id) for its events."""
        self._check(collection)
        version = doc["version"]
        pending = _pending_in(doc)
        if pending is None:
            pending = await self._pending_of(collection, doc)
        new_doc = {
            **{k: v for k, v in doc.items() if k != PENDING},
            **changes,
            "version": version + 1,
        }
        kept = [old for old in pending if not await self.writers.was_sent(old)]
        entry = await self._new_entry(event(new_doc))  # (in flight from here on)
        try:
            result = await self.db[collection].update_one(
                {"_id": doc["_id"], "version": version},
                {"$set": {**changes, PENDING: [*kept, entry]}, "$inc": {"version": 1}},
            )
        except BaseException:
            self.relay.failed(collection, doc["_id"], entry)
            raise
        if result.matched_count == 0:
            self.ledger.refused(entry)
            raise VersionConflict()
        resend_after = datetime.now(UTC) - RESEND_WITH_UPDATE
        earlier = [old for old in kept if old["at"] > resend_after]
        await self.relay.send_new(collection, doc["_id"], [*earlier, entry])
        return Stored.holding(new_doc, [*kept, entry])

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
        await self.writers.ensure_fresh()
        entry = pending_event(event, self.writers.id, self.ledger.next)
        self.ledger.number(entry["at"])
        return entry

    # -- state, for probes and metrics --------------------------------------------------

    @property
    def writer(self) -> str:
        return self.writers.id

    @property
    def published(self) -> Counter[str]:
        """Events JetStream acknowledged, by subject (for /metrics)."""
        return self.relay.published

    def unsent(self) -> int:
        return self.ledger.unsent()

    def oldest_unsent_at(self) -> datetime | None:
        return self.ledger.oldest_unsent_at()

    def stuck(self, bound: timedelta) -> bool:
        """An event has waited longer than `bound` to be sent (NATS unreachable for
        long, the stream full or refusing): `/readyz` reports it."""
        return self.ledger.stuck(bound)

    # -- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.longest_resend_gap() >= DUPLICATE_WINDOW_SECONDS:
            raise ValueError(
                f"outbox: a re-send can come {self.longest_resend_gap():.0f}s after the first "
                f"publish, past the stream's {DUPLICATE_WINDOW_SECONDS:.0f}s duplicate window"
            )
        await self.writers.beat()
        self.relay.start()

    async def stop(self) -> None:
        """Stop the loops, one last bounded attempt to send what is unsent, then leave
        the writers' table (all sent) or flag this writer for adoption now."""
        await self.relay.stop()
        with contextlib.suppress(PyMongoError):
            await self.writers.leave()


def _pending_in(doc: Document) -> list[Document] | None:
    """The events pending in a document as read: kept aside by `Stored`, or (a raw
    read) in its field; None when the read did not fetch them."""
    if isinstance(doc, Stored) and doc.pending is not None:
        return doc.pending
    return (doc.get(PENDING) or []) if PENDING in doc else None
