"""How events wait in the documents they describe, and the reads that keep them out of
a service's sight.

A service reads its documents through `get_by_id`, `find_one` and `find_documents`: it
gets plain documents. One read by `get_by_id` or `find_one` still carries the pending events aside (`Stored`),
so the outbox's update of it drops the sent ones in the same write with no second read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from common.events.contracts import Event
from common.mongo import Document, parse_object_id
from common.observability.tracing import current_carrier

PENDING = "_outbox"
"""The field of a document that holds its recent events: [{id, subject, data, at, w, n,
trace?}] (`w`, `n`: the writer and its number for the event; `trace`: the trace
context it was recorded in, `common.observability.tracing`)."""

WRITERS = "outbox_writers"
"""One row per live writer (process): {_id, mark, beat, at, host, stopped?}."""


class Stored(dict[str, Any]):
    """A document as its service sees it; the events pending in it kept aside for the
    outbox (`pending`: None when the read did not fetch them)."""

    pending: list[Document] | None = None

    @classmethod
    def of(cls, raw: Document) -> Stored:
        """A document as read (its pending events in their field)."""
        return cls.holding({k: v for k, v in raw.items() if k != PENDING}, raw.get(PENDING))

    @classmethod
    def holding(cls, doc: Document, pending: list[Document] | None) -> Stored:
        """A document without the field, and the events pending in it."""
        stored = cls(doc)
        stored.pending = list(pending or ())
        return stored


async def get_by_id(collection: AsyncCollection[Any], doc_id: str | ObjectId) -> Stored | None:
    """The document with this id — a path's or an event's id as text (None when it is
    not an id we make) or an ObjectId. Read whole: its pending events are what let an
    update drop the sent ones in the same write. (No projection: it would cost the
    database more CPU than the bytes it saves.)"""
    oid = parse_object_id(doc_id) if isinstance(doc_id, str) else doc_id
    return None if oid is None else await find_one(collection, {"_id": oid})


async def find_one(collection: AsyncCollection[Any], query: Mapping[str, Any]) -> Stored | None:
    """The first document matching `query`, read whole (as `get_by_id`)."""
    raw = await collection.find_one(query)
    return None if raw is None else Stored.of(raw)


def find_documents(collection: AsyncCollection[Any], query: Mapping[str, Any]) -> AsyncCursor[Any]:
    """A cursor over the documents matching `query`, without the outbox's field."""
    return collection.find(query, {PENDING: 0})


def pending_event(event: Event, writer: str, n: int) -> Document:
    """How an event waits in its document (validated when built), numbered by its
    writer, with the trace it was recorded in: whoever publishes it, and when,
    continues that trace."""
    entry: Document = {
        "id": event.message_id(),
        "subject": event.subject.value,
        "schema": event.schema_version,
        "data": event.encode().decode(),
        "at": datetime.now(UTC),
        "w": writer,
        "n": n,
    }
    if carrier := current_carrier():
        entry["trace"] = carrier
    return entry


def unsent_by(entry: Document, marks: Mapping[str, int]) -> bool:
    """Not yet on the stream as far as the writers' marks say (a writer with no row
    was adopted: its events were sent)."""
    writer = entry["w"]
    return writer in marks and entry["n"] >= marks[writer]


async def unsent_count(db: AsyncDatabase[Any], collections: Iterable[str]) -> int:
    """How many documents hold events not yet acknowledged by JetStream, as the writers'
    rows last said (a scan: for tests and the bench, not for the request path)."""
    marks = {row["_id"]: row["mark"] for row in await db[WRITERS].find().to_list()}
    count = 0
    for collection in collections:
        cursor = db[collection].find({f"{PENDING}.0": {"$exists": True}}, {PENDING: 1})
        async for doc in cursor:
            count += any(unsent_by(entry, marks) for entry in doc[PENDING])
    return count
