"""The tickets collection. Documents: {_id, title, priceCents, userId, version, orderId,
reservedUntil?, sold?, createdAt}; `version` starts at 0 and every update bumps it (optimistic
concurrency). A ticket is `available` (no orderId), `reserved` (held by an order) or
`sold` (its order completed: it keeps the orderId for good).
Every change is written with its event through the outbox (`common.outbox`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.events import TicketCreatedEvent, TicketRefusedEvent, TicketUpdatedEvent
from common.money import cents_to_price
from common.outbox import Outbox, find_documents, get_by_id
from tickets.browse import SORT_KEYS, Browse
from tickets.schemas import MyTicketOut, TicketIn, TicketOut

TICKETS = "tickets"
CANCELLED_ORDERS = "cancelled_orders"  # {_id: order id, at}
# {_id: order id, ticketId, reason, at}, each written with its ticket.refused event
REFUSED_ORDERS = "refused_orders"
PRICE_CHANGED = "price_changed"
INDEXES = {
    TICKETS: [
        IndexModel([("orderId", 1), ("_id", DESCENDING)], name="for_sale_newest"),
        # browsing by price, both ways, and price ranges (tickets.browse)
        IndexModel([("orderId", 1), ("priceCents", 1), ("_id", 1)], name="for_sale_by_price"),
        # a seller's own tickets, newest first (My tickets)
        IndexModel([("userId", 1), ("_id", DESCENDING)], name="by_seller_newest"),
    ],
    # a late order.created comes within minutes, not weeks
    CANCELLED_ORDERS: [IndexModel("at", name="forget_after_a_week", expireAfterSeconds=604_800)],
    REFUSED_ORDERS: [IndexModel("at", name="forget_after_a_week", expireAfterSeconds=604_800)],
}

Doc = dict[str, Any]


def to_out(doc: Doc) -> TicketOut:
    return TicketOut(
        id=str(doc["_id"]),
        title=doc["title"],
        price=cents_to_price(doc["priceCents"]),
        userId=doc["userId"],
        version=doc["version"],
        orderId=doc.get("orderId"),
        status=status(doc),
    )


def status(doc: Doc) -> str:
    if doc.get("sold"):
        return "sold"
    return "reserved" if doc.get("orderId") else "available"


RELEASED: Doc = {"orderId": None, "reservedUntil": None}  # an order's hold is over


def to_mine(doc: Doc) -> MyTicketOut:
    """A ticket as its seller sees it: also until when a buyer holds it."""
    return MyTicketOut(**to_out(doc).model_dump(), reservedUntil=doc.get("reservedUntil"))


def created_event(doc: Doc) -> TicketCreatedEvent:
    return TicketCreatedEvent(**to_out(doc).model_dump(exclude_none=True))


def updated_event(doc: Doc) -> TicketUpdatedEvent:
    """{id, version, title, price, userId, orderId?}: orderId while reserved."""
    return TicketUpdatedEvent(**to_out(doc).model_dump(exclude_none=True))


def new_document(title: str, price_cents: int, user_id: str) -> Doc:
    """A ticket for sale, at version 0."""
    return {
        "_id": ObjectId(),
        "title": title,
        "priceCents": price_cents,
        "userId": user_id,
        "version": 0,
        "orderId": None,
        "createdAt": datetime.now(UTC),
    }


async def insert(outbox: Outbox, ticket: TicketIn, user_id: str) -> Doc:
    doc = new_document(ticket.title, ticket.price_cents, user_id)
    return await outbox.insert(TICKETS, doc, created_event(doc))


async def get(db: AsyncDatabase[Any], ticket_id: str | ObjectId) -> Doc | None:
    """The ticket with this id (None for an id this service never issued)."""
    return await get_by_id(db[TICKETS], ticket_id)


async def list_for_sale(db: AsyncDatabase[Any], browse: Browse, *, limit: int) -> list[Doc]:
    """A page of tickets for sale, as `browse` filters and orders them."""
    found = find_documents(db[TICKETS], browse.query()).sort(SORT_KEYS[browse.sort])
    return await found.limit(limit).to_list()


async def list_of_seller(
    db: AsyncDatabase[Any], user_id: str, *, limit: int, before: ObjectId | None
) -> list[Doc]:
    """A seller's tickets in every state, newest first; `before`: after that ticket."""
    query: Doc = {"userId": user_id} | ({"_id": {"$lt": before}} if before else {})
    found = find_documents(db[TICKETS], query).sort("_id", DESCENDING).limit(limit)
    return await found.to_list()


async def count_for_sale(db: AsyncDatabase[Any], browse: Browse) -> int:
    return await db[TICKETS].count_documents(browse.count_query())


async def update(outbox: Outbox, doc: Doc, changes: dict[str, Any]) -> Doc:
    """Apply the change if nobody changed the ticket since `doc` was read (else 409),
    bump its version and publish `ticket.updated`."""
    return await outbox.update(TICKETS, doc, changes, updated_event)


async def record_cancellation(db: AsyncDatabase[Any], order_id: str) -> None:
    """Remember that an order is over, so its order.created, if it comes late, does not
    reserve the ticket again (the two subjects are consumed independently)."""
    await db[CANCELLED_ORDERS].update_one(
        {"_id": order_id}, {"$setOnInsert": {"at": datetime.now(UTC)}}, upsert=True
    )


async def refuse(outbox: Outbox, ticket_id: str, order_id: str, reason: str) -> None:
    """Record that the ticket was not reserved for the order, with the `ticket.refused`
    event that tells orders (once: a redelivered order.created finds it recorded)."""
    doc = {"_id": order_id, "ticketId": ticket_id, "reason": reason, "at": datetime.now(UTC)}
    event = TicketRefusedEvent(id=ticket_id, orderId=order_id, reason=reason)
    try:
        await outbox.insert(REFUSED_ORDERS, doc, event)
    except DuplicateKeyError:
        pass  # refused already, and its event recorded then


async def was_cancelled(db: AsyncDatabase[Any], order_id: str) -> bool:
    return await db[CANCELLED_ORDERS].count_documents({"_id": order_id}, limit=1) == 1
