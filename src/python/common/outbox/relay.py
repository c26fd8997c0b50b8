"""Sending: a new event at once (bounded by the publish timeout), then whatever is left
— this process's failed publishes from memory (a read by id each), a rescan past what
it remembers, and the events of writers that died or stopped (adoption)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from common.events.publisher import PublishError, publish_raw
from common.events.versions import schema_header
from common.mongo import Document
from common.outbox.documents import PENDING
from common.outbox.ledger import Ledger
from common.outbox.writers import Writers
from common.tasks import Loop

log = logging.getLogger("common.outbox")


class JetStreamSource(Protocol):
    """What the outbox needs of the client manager (or of the recording fake)."""

    @property
    def jetstream(self) -> Any: ...

    @property
    def is_connected(self) -> bool: ...

    async def ensure_stream(self) -> Any: ...


class Relay:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        nats: JetStreamSource,
        collections: Sequence[str],
        ledger: Ledger,
        writers: Writers,
        *,
        publish_timeout: float,
        interval: float,
        batch_size: int,
    ) -> None:
        self.db = db
        self.nats = nats
        self.collections = tuple(collections)
        self.ledger = ledger
        self.writers = writers
        self.publish_timeout = publish_timeout
        self.interval = interval
        self.batch_size = batch_size
        self.published: Counter[str] = Counter()  # events acked by JetStream, by subject
        self._wake = asyncio.Event()  # run the relay now
        self._loop = Loop("outbox-relay", self._relay_step, pause=interval)
        self._heart = Loop("outbox-beat", self._beat_step, pause=interval)

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        self._heart.start()
        self._loop.start()

    async def stop(self) -> None:
        """Stop the loops, then one last bounded attempt to send what is unsent."""
        await self._loop.stop()
        await self._heart.stop()
        if self.nats.is_connected:
            with contextlib.suppress(TimeoutError, PublishError, PyMongoError):
                async with asyncio.timeout(self.publish_timeout):
                    await self.flush()

    def failed(self, collection: str, doc_id: Any, entry: Document) -> None:
        self.ledger.fail(collection, doc_id, entry)
        self._wake.set()

    # -- sending ------------------------------------------------------------------------

    async def send_new(self, collection: str, doc_id: Any, entries: list[Document]) -> None:
        """A request's new event (the last of `entries`, after the document's earlier
        unacknowledged ones): sent now, or left to the relay."""
        if not await self.deliver(collection, doc_id, entries):
            self.failed(collection, doc_id, entries[-1])

    async def deliver(self, collection: str, doc_id: Any, entries: list[Document]) -> bool:
        """Publish a document's pending entries in order and wait (bounded) for the
        acks. True when all were acked; False leaves them to the relay."""
        if not self.nats.is_connected:
            return False  # nothing to wait for: the relay sends them when NATS is back
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self._publish(entries)
        except (TimeoutError, PublishError) as exc:
            log.warning("events of %s %s left to the relay: %s", collection, doc_id, exc)
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
                # the version it was written in (none: by a release before event
                # versions, whose entries a rolling upgrade still finds in flight: 1)
                headers=schema_header(entry["subject"], entry.get("schema", 1)),
                trace=entry.get("trace"),
            )
            self.published[entry["subject"]] += 1
            self.ledger.sent(entry, ours=entry["w"] in self.writers.ids)

    async def flush(self) -> int:
        """Send what this process failed to send, then (if it forgot some) rescan for
        them. Returns how many documents were read to do it. Raises PublishError or
        PyMongoError if some could not be sent (they stay unsent)."""
        read = await self._resend_failed()
        start = self.ledger.start_rescan()
        if start is not None:
            done = False
            try:
                read += await self._send_writers_events(self.writers.id, start)
                done = True
            finally:
                self.ledger.end_rescan(done)
        return read

    async def _resend_failed(self) -> int:
        """The remembered failures, a page at a time: their documents read by id (one
        query per collection), each one's unsent entries published in order, documents
        in parallel. A failure whose entry is not in its document was never written."""
        failed = self.ledger.failed
        read = 0
        while page := list(failed.items())[: self.batch_size]:
            by_collection: dict[str, list[str]] = {}
            for event_id, unsent in page:
                by_collection.setdefault(unsent.collection, []).append(event_id)
            for collection, event_ids in by_collection.items():
                ids = list({failed[event_id].doc_id for event_id in event_ids})
                docs = await self.db[collection].find({"_id": {"$in": ids}}, {PENDING: 1}).to_list()
                stored = {e["id"] for doc in docs for e in doc.get(PENDING) or ()}
                for event_id in event_ids:
                    if event_id not in stored:
                        failed.pop(event_id, None)
                await self._publish_docs(
                    [[e for e in doc.get(PENDING) or () if e["id"] in failed] for doc in docs]
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

    async def _send_writers_events(self, writer: str, start: int) -> int:
        """Publish every event of `writer` numbered `start` or more found in the
        collections, in pages of documents sent in parallel. A scan: only after a
        crash or an overflow."""
        match = {"w": writer, "n": {"$gte": start}}
        read = 0
        for collection in self.collections:
            cursor = self.db[collection].find(
                {PENDING: {"$elemMatch": match}},
                {PENDING: 1},
                batch_size=self.batch_size,
            )
            page: list[Document] = []
            async for doc in cursor:
                page.append(doc)
                if len(page) >= self.batch_size:
                    read += await self._send_page(page, writer, start)
                    page = []
            read += await self._send_page(page, writer, start)
        return read

    async def _send_page(self, page: list[Document], writer: str, start: int) -> int:
        def ours(entry: Document) -> bool:
            return entry["w"] == writer and entry["n"] >= start

        await self._publish_docs([[e for e in doc[PENDING] if ours(e)] for doc in page])
        return len(page)

    async def _adopt(self, row: Document) -> None:
        """Send a dead writer's events from its mark on, then remove its row."""
        if not self.nats.is_connected:
            return
        log.warning(
            "outbox: adopting writer %s (%s) from %d", row["_id"], row.get("host"), row["mark"]
        )
        await self._send_writers_events(row["_id"], row["mark"])
        await self.writers.remove_adopted(row)

    # -- the loops ----------------------------------------------------------------------

    async def _beat_step(self) -> None:
        await asyncio.sleep(self.interval)
        try:
            await self.writers.beat()
            for row in await self.writers.dead():
                await self._adopt(row)
        except (PyMongoError, PublishError, TimeoutError) as exc:  # a server away: next beat
            log.warning("outbox heartbeat: will retry: %r", exc)
        self.writers.forget_departed()

    async def _relay_step(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._wake.wait()
        self._wake.clear()
        if not self.nats.is_connected:
            return
        if self.ledger.nothing_unsent():
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
