"""The orders collection and the replica of tickets this service keeps.

Orders: {_id, userId, status, expiresAt, ticket: {id, title, priceCents, version},
activeTicketId, unpaidSlot, requestKey?, reason?, payment?, version, createdAt}.

- `activeTicketId` is the ticket's id while the order holds it (created, complete) and
  null once cancelled; a unique index on it admits one such order per ticket, so
  reserving is one atomic insert: of any number of simultaneous buyers exactly one
  gets the ticket, and a ticket is sold (`complete`) at most once.
- `unpaidSlot` is `<userId>:<k>` (k < MAX_UNPAID_ORDERS_PER_USER) while the order is
  `created`, null after; a unique index on it caps a user's unpaid orders, race-free.
- `requestKey` is `<userId>:<Idempotency-Key>` when the buyer's request carried one; a
  unique index on it makes a repeated request (its first answer was lost) find the
  order the first one placed instead of placing another, even when both run at once.
- `reason`: why the service (not the buyer) cancelled it; `payment`: what payments
  last said of its money (captured, voided, refunded), shown to the buyer.

Orders is the one authority on an order's state: it completes an order when payments
reports an authorization (`payment.authorized`) only if the order is still `created`,
in time, at the price the ticket still has and reserved for it by tickets; otherwise it
cancels it, and payments voids the authorization.

Tickets (replica, from ticket.created / ticket.updated, in version order):
{_id: the ticket's id, title, priceCents, userId, orderId, version}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.events import (
    EventAhead,
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderCreatedEvent,
    OrderStatus,
    PaymentAuthorizedEvent,
    TicketCreatedEvent,
    TicketUpdatedEvent,
    iso_utc,
)
from common.money import cents_to_price, price_to_cents
from common.mongo import VersionConflict, parse_object_id
from common.outbox import Outbox, find_documents, find_one, get_by_id
from common.replica import apply_in_order
from orders.schemas import OrderOut, OrderTicketOut

ORDERS = "orders"
TICKETS = "tickets"
ACTIVE = "activeTicketId"
SLOT = "unpaidSlot"
REQUEST_KEY = "requestKey"
INDEXES = {
    ORDERS: [
        IndexModel(
            ACTIVE,
            name="one_active_order_per_ticket",
            unique=True,
            partialFilterExpression={ACTIVE: {"$type": "string"}},
        ),
        IndexModel(
            SLOT,
            name="unpaid_orders_per_user",
            unique=True,
            partialFilterExpression={SLOT: {"$type": "string"}},
        ),
        IndexModel(
            REQUEST_KEY,
            name="one_order_per_request_key",
            unique=True,
            partialFilterExpression={REQUEST_KEY: {"$type": "string"}},
        ),
        IndexModel([("userId", 1), ("_id", DESCENDING)], name="by_user_newest"),
    ]
}

Doc = dict[str, Any]


SELLER_CHANGED = "The seller changed this ticket; order again to see the new price"
EXPIRED = "The order expired before it was paid"
PAYMENT_MISMATCH = "The payment did not match the order's price"


class TicketReserved(Exception):
    """Another order holds the ticket."""


class TooManyUnpaid(Exception):
    """The user holds the most unpaid orders allowed."""


class RequestRepeated(Exception):
    """An order with this request key exists (placed by the same request, sent before)."""


def to_out(doc: Doc) -> OrderOut:
    ticket = doc["ticket"]
    return OrderOut(
        id=str(doc["_id"]),
        status=doc["status"],
        userId=doc["userId"],
        expiresAt=iso_utc(doc["expiresAt"]),
        version=doc["version"],
        reason=doc.get("reason"),
        payment=doc.get("payment"),
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
        id=str(doc["_id"]),
        version=doc["version"],
        ticket={"id": doc["ticket"]["id"]},
        reason=doc.get("reason"),  # the service's reason; none when the buyer cancelled
    )


def completed_event(doc: Doc) -> OrderCompletedEvent:
    return OrderCompletedEvent(
        id=str(doc["_id"]), version=doc["version"], ticket={"id": doc["ticket"]["id"]}
    )


async def get_ticket(db: AsyncDatabase[Any], ticket_id: str) -> Doc | None:
    return await db[TICKETS].find_one({"_id": ticket_id})


async def create(
    outbox: Outbox,
    ticket: Doc,
    user_id: str,
    expires_at: datetime,
    *,
    max_unpaid: int,
    request_key: str | None = None,
) -> Doc:
    """Reserve `ticket` for `user_id` until `expires_at` and record `order.created`, in
    one insert that also takes one of the user's `max_unpaid` unpaid-order slots (0: no
    cap). TicketReserved if another order holds the ticket; TooManyUnpaid if every slot
    is taken (simultaneous orders by one user each try a free slot: the index decides);
    RequestRepeated if an order of this user has this `request_key`."""
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
        SLOT: None,
        **({REQUEST_KEY: _request_key(user_id, request_key)} if request_key else {}),
        "version": 0,
        "createdAt": datetime.now(expires_at.tzinfo),
    }
    if not max_unpaid:  # no cap
        return await _insert(outbox, doc)
    orders = outbox.db[ORDERS]
    mine = {SLOT: {"$gte": f"{user_id}:", "$lt": f"{user_id};"}}  # ':' + 1 == ';'
    for _ in range(max_unpaid + 1):  # each round loses a slot to another order, at most
        taken = {held[SLOT] async for held in orders.find(mine, {SLOT: 1})}
        free = (slot for k in range(max_unpaid) if (slot := f"{user_id}:{k}") not in taken)
        doc[SLOT] = next(free, None)
        if doc[SLOT] is None:
            raise TooManyUnpaid()
        try:
            return await _insert(outbox, doc)
        except SlotTaken:
            continue
    raise TooManyUnpaid()


class SlotTaken(Exception):
    """A simultaneous order by the same user took that unpaid-order slot first."""


async def _insert(outbox: Outbox, doc: Doc) -> Doc:
    try:
        return await outbox.insert(ORDERS, doc, created_event(doc))
    except DuplicateKeyError as exc:
        index = (exc.details or {}).get("keyPattern") or {}
        if SLOT in index:
            raise SlotTaken() from None
        if REQUEST_KEY in index:
            raise RequestRepeated() from None
        raise TicketReserved() from None


def _request_key(user_id: str, key: str) -> str:
    return f"{user_id}:{key}"  # a key is one user's: another's same key is another request


async def by_request_key(db: AsyncDatabase[Any], user_id: str, key: str) -> Doc | None:
    """The order this user's request with `key` placed, if one did."""
    return await find_one(db[ORDERS], {REQUEST_KEY: _request_key(user_id, key)})


async def holder(db: AsyncDatabase[Any], ticket_id: str) -> Doc | None:
    """The order that holds the ticket (created or complete), if any."""
    return await db[ORDERS].find_one({ACTIVE: ticket_id}, {"status": 1})


async def get(db: AsyncDatabase[Any], order_id: str | ObjectId) -> Doc | None:
    """The order with this id (None for an id this service never issued)."""
    return await get_by_id(db[ORDERS], order_id)


async def list_for_user(db: AsyncDatabase[Any], user_id: str) -> list[Doc]:
    cursor = find_documents(db[ORDERS], {"userId": user_id}).sort("_id", DESCENDING)
    return await cursor.to_list()


async def cancel(outbox: Outbox, doc: Doc, reason: str | None = None) -> Doc:
    """Cancel and release the ticket and the unpaid slot (VersionConflict if the order
    changed meanwhile); `reason` when the service, not the buyer, cancels it."""
    changes: Doc = {"status": OrderStatus.CANCELLED.value, ACTIVE: None, SLOT: None}
    if reason:
        changes["reason"] = reason
    return await outbox.update(ORDERS, doc, changes, cancelled_event)


async def cancel_unless_final(
    outbox: Outbox, db: AsyncDatabase[Any], order_id: str, reason: str
) -> str:
    """An order whose time is up (EXPIRED), or whose ticket tickets refused to reserve
    for it (SELLER_CHANGED): cancelled, saying why (its ticket and unpaid slot released),
    unless it was paid or is already cancelled. Returns what happened; VersionConflict if
    it changed meanwhile (the listener retries and decides again)."""
    doc = await get(db, order_id)
    if doc is None:
        return "unknown order"
    if doc["status"] in (OrderStatus.COMPLETE, OrderStatus.CANCELLED):
        return f"already {doc['status']}"
    await cancel(outbox, doc, reason)
    return "cancelled"


async def decide_payment(
    outbox: Outbox, db: AsyncDatabase[Any], event: PaymentAuthorizedEvent
) -> str:
    """payment.authorized: complete the order (publishing `order.completed`: payments
    captures, tickets marks the ticket sold) if it is still `created`, in time, for the
    amount it records, and the ticket is still at that price and reserved for it by
    tickets; otherwise cancel it (payments voids the authorization on
    `order.cancelled`). EventAhead while tickets has not answered the reservation yet;
    VersionConflict if the order changed meanwhile (the listener decides again)."""
    doc = await get(db, event.orderId)
    if doc is None:
        return "unknown order"
    if doc["status"] != OrderStatus.CREATED:
        return f"already {doc['status']}"  # cancelled: payments voids on order.cancelled
    reason = None
    if event.amountCents != doc["ticket"]["priceCents"]:
        reason = PAYMENT_MISMATCH
    elif datetime.now(UTC) >= doc["expiresAt"]:
        reason = EXPIRED
    else:
        ticket = await get_ticket(db, doc["ticket"]["id"])
        if ticket is None or ticket["priceCents"] != doc["ticket"]["priceCents"]:
            reason = SELLER_CHANGED
        elif ticket.get("orderId") != event.orderId:
            raise EventAhead(f"tickets has not reserved {doc['ticket']['id']} for it yet")
    if reason:
        await cancel(outbox, doc, reason)
        return f"cancelled: {reason}"
    changes = {"status": OrderStatus.COMPLETE.value, SLOT: None, "payment": "authorized"}
    await outbox.update(ORDERS, doc, changes, completed_event)
    return "complete"


async def cancel_stale_price(outbox: Outbox, db: AsyncDatabase[Any], ticket_id: str) -> str | None:
    """After a ticket.updated: an unpaid order placed at the ticket's earlier price is
    cancelled (the seller's edit was acknowledged first; tickets does not reserve the
    ticket for it). Returns the order's id if one was."""
    ticket = await get_ticket(db, ticket_id)
    doc = await db[ORDERS].find_one({ACTIVE: ticket_id, "status": OrderStatus.CREATED.value})
    if ticket is None or doc is None or doc["ticket"]["priceCents"] == ticket["priceCents"]:
        return None
    try:
        await cancel(outbox, doc, SELLER_CHANGED)
    except VersionConflict:
        return None  # paid or cancelled meanwhile: decided elsewhere
    return str(doc["_id"])


async def record_payment(db: AsyncDatabase[Any], order_id: str, state: str) -> None:
    """What payments did with the order's money (shown to the buyer). Not a change
    others replicate, so no version and no event."""
    oid = parse_object_id(order_id)
    if oid is not None:
        await db[ORDERS].update_one({"_id": oid}, {"$set": {"payment": state}})


async def apply_ticket(
    db: AsyncDatabase[Any], event: TicketCreatedEvent | TicketUpdatedEvent
) -> bool:
    """Keep the ticket replica in version order (see common.replica)."""
    fields = {
        "title": event.title,
        "priceCents": price_to_cents(event.price),
        "userId": event.userId,
        "orderId": getattr(event, "orderId", None),  # whom tickets reserved it for
    }
    return await apply_in_order(db[TICKETS], event.id, event.version, fields)
