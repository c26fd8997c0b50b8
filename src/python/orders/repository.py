"""The orders collection and the replica of tickets this service keeps.

Orders: {_id, userId, status, expiresAt, ticket: {id, title, priceCents, version},
activeTicketId, version, createdAt}. `activeTicketId` is the ticket's id while the
order holds it (created, awaiting:payment, complete) and null once cancelled; a unique
index on it admits one such order per ticket, so reserving is one atomic insert: of
any number of simultaneous buyers exactly one gets the ticket.

Tickets (replica, from ticket.created / ticket.updated, in version order):
{_id: the ticket's id, title, priceCents, userId, version}.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.events import (
    OrderCancelledEvent,
    OrderCreatedEvent,
    OrderStatus,
    TicketCreatedEvent,
    TicketUpdatedEvent,
    iso_utc,
)
from common.money import cents_to_price, price_to_cents
from common.mongo import VersionConflict, parse_object_id
from common.outbox import PENDING, Outbox, find_by_id
from common.replica import apply_in_order
from orders.schemas import OrderOut, OrderTicketOut

ORDERS = "orders"
TICKETS = "tickets"
ACTIVE = "activeTicketId"
INDEXES = {
    ORDERS: [
        IndexModel(
            ACTIVE,
            name="one_active_order_per_ticket",
            unique=True,
            partialFilterExpression={ACTIVE: {"$type": "string"}},
        ),
        IndexModel([("userId", 1), ("_id", DESCENDING)], name="by_user_newest"),
    ]
}

Doc = dict[str, Any]


class TicketReserved(Exception):
    """Another order holds the ticket."""


def to_out(doc: Doc) -> OrderOut:
    ticket = doc["ticket"]
    return OrderOut(
        id=str(doc["_id"]),
        status=doc["status"],
        userId=doc["userId"],
        expiresAt=iso_utc(doc["expiresAt"]),
        version=doc["version"],
        ticket=OrderTicketOut(
            id=ticket["id"],
            title=ticket["title"],
            price=cents_to_price(ticket["priceCents"]),
            version=ticket["version"],
        ),
    )


def created_event(doc: Doc) -> OrderCreatedEvent:
    return OrderCreatedEvent(
        id=str(doc["_id"]),
        version=doc["version"],
        status=doc["status"],
        userId=doc["userId"],
        expiresAt=doc["expiresAt"],
        ticket={"id": doc["ticket"]["id"], "price": cents_to_price(doc["ticket"]["priceCents"])},
    )


def cancelled_event(doc: Doc) -> OrderCancelledEvent:
    return OrderCancelledEvent(
        id=str(doc["_id"]), version=doc["version"], ticket={"id": doc["ticket"]["id"]}
    )


async def get_ticket(db: AsyncDatabase[Any], ticket_id: str) -> Doc | None:
    return await db[TICKETS].find_one({"_id": ticket_id})


async def create(outbox: Outbox, ticket: Doc, user_id: str, expires_at: datetime) -> Doc:
    """Reserve `ticket` for `user_id` until `expires_at` and record `order.created`, in
    one insert; TicketReserved if another order holds it."""
    doc = {
        "_id": ObjectId(),
        "userId": user_id,
        "status": OrderStatus.CREATED.value,
        "expiresAt": expires_at,
        "ticket": {
            "id": ticket["_id"],
            "title": ticket["title"],
            "priceCents": ticket["priceCents"],
            "version": ticket["version"],
        },
        ACTIVE: ticket["_id"],
        "version": 0,
        "createdAt": datetime.now(expires_at.tzinfo),
    }
    try:
        return await outbox.insert(ORDERS, doc, created_event(doc))
    except DuplicateKeyError:
        raise TicketReserved() from None


async def get(db: AsyncDatabase[Any], order_id: ObjectId) -> Doc | None:
    return await find_by_id(db[ORDERS], order_id)


async def list_for_user(db: AsyncDatabase[Any], user_id: str) -> list[Doc]:
    cursor = db[ORDERS].find({"userId": user_id}, {PENDING: 0}).sort("_id", DESCENDING)
    return await cursor.to_list()


async def cancel(outbox: Outbox, doc: Doc) -> Doc:
    """Cancel and release the ticket (VersionConflict if the order changed meanwhile)."""
    changes = {"status": OrderStatus.CANCELLED.value, ACTIVE: None}
    return await outbox.update(ORDERS, doc, changes, cancelled_event)


async def expire(outbox: Outbox, db: AsyncDatabase[Any], order_id: str) -> str:
    """An order whose time is up: cancelled (and its ticket released) unless it was paid
    or is already cancelled. Returns what happened; VersionConflict if it changed
    meanwhile (the listener retries and decides again)."""
    oid = parse_object_id(order_id)
    doc = await get(db, oid) if oid else None
    if doc is None:
        return "unknown order"
    if doc["status"] in (OrderStatus.COMPLETE, OrderStatus.CANCELLED):
        return f"already {doc['status']}"
    await cancel(outbox, doc)
    return "cancelled"


async def mark_paid(db: AsyncDatabase[Any], order_id: str) -> str:
    """payment.created: the order is `complete` (version + 1; the ticket stays held for
    good). Publishes nothing, as the original: nobody needs it yet. Returns what
    happened; VersionConflict if it changed meanwhile (the listener retries)."""
    oid = parse_object_id(order_id)
    doc = await get(db, oid) if oid else None
    if doc is None:
        return "unknown order"
    if doc["status"] == OrderStatus.COMPLETE:
        return "already complete"
    if doc["status"] == OrderStatus.CANCELLED:
        # payments refuses orders it knows are over; this is the rare race with an
        # expiration it had not heard of yet: the charge must be refunded by hand
        return "PAID AFTER CANCELLATION: refund needed"
    result = await db[ORDERS].update_one(
        {"_id": doc["_id"], "version": doc["version"]},
        {"$set": {"status": OrderStatus.COMPLETE.value}, "$inc": {"version": 1}},
    )
    if result.matched_count == 0:
        raise VersionConflict()
    return "complete"


async def apply_ticket(
    db: AsyncDatabase[Any], event: TicketCreatedEvent | TicketUpdatedEvent
) -> bool:
    """Keep the ticket replica in version order (see common.replica)."""
    fields = {
        "title": event.title,
        "priceCents": price_to_cents(event.price),
        "userId": event.userId,
    }
    return await apply_in_order(db[TICKETS], event.id, event.version, fields)
