"""The outbox: a committed change always gets its event, in version order, deduplicated,
for ONE database write per change.

"Save, then publish" loses the event if the process dies (or NATS is down) in between.
Here the event is stored IN the document it describes, by the same single-document
write that makes the change (MongoDB applies one document's write atomically: no
multi-document transaction, one round trip), then published at once, awaiting
JetStream's ack (bounded by the publish timeout: the original's "awaiting publication"):

    doc = await outbox.insert("tickets", doc, TicketCreatedEvent(...))
    doc = await outbox.update("tickets", doc, {"title": t}, lambda new: TicketUpdatedEvent(...))

The parts: `documents` (how events wait in documents, and the reads that hide them),
`ledger` (what this process has not sent), `writers` (the writers' table), `relay`
(sending), and `outbox` (`Outbox`: recording, the calls a service makes).

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

from common.outbox.documents import (
    PENDING,
    WRITERS,
    Stored,
    find_documents,
    find_one,
    get_by_id,
    pending_event,
    unsent_count,
)
from common.outbox.ledger import MAX_REMEMBERED
from common.outbox.outbox import Outbox
from common.outbox.relay import JetStreamSource

__all__ = [
    "MAX_REMEMBERED",
    "PENDING",
    "WRITERS",
    "JetStreamSource",
    "Outbox",
    "Stored",
    "find_documents",
    "find_one",
    "get_by_id",
    "pending_event",
    "unsent_count",
]
