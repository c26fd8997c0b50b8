"""In-order replicas: a service's own copy of another service's versioned data.

Every consumer of versioned events needs the same rule (the original's
`findByEvent(version - 1)`): apply version N only on top of N-1. Events can arrive
twice (a redelivery, an outbox re-send after the dedupe window) or early (N before
N-1, when N-1's delivery failed and is being retried):

- N == stored + 1 → applied;
- N <= stored     → a duplicate: nothing changes, ack and ignore;
- N >  stored + 1 → `EventAhead`: the listener naks it with a short delay, so it
  comes back after its predecessor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from common.events.listener import EventAhead
from common.mongo import Document


async def apply_in_order(
    collection: AsyncCollection[Document],
    doc_id: Any,
    version: int,
    fields: Mapping[str, Any],
) -> bool:
    """Store version `version` of `doc_id` with `fields`, if it is the next one.

    True: applied. False: already had it (a duplicate). Raises EventAhead when an
    earlier version is still missing. Safe under concurrency: each step is one
    conditional write, so two replicas handling the same event apply it once.
    """
    if version == 0:
        try:
            await collection.insert_one({"_id": doc_id, **fields, "version": 0})
        except DuplicateKeyError:
            return False
        return True
    while True:
        result = await collection.update_one(
            {"_id": doc_id, "version": version - 1}, {"$set": {**fields, "version": version}}
        )
        if result.matched_count == 1:
            return True
        current = await collection.find_one({"_id": doc_id}, {"version": 1})
        if current is None or current["version"] < version - 1:
            raise EventAhead(f"version {version} of {doc_id} arrived before version {version - 1}")
        if current["version"] >= version:
            return False
        # version - 1 was written between the update and the read (by the listener of
        # the other subject): the update can apply now
