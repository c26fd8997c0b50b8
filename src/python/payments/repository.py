"""Payments, and the replica of orders this service keeps.

Payments: {_id, orderId (unique), userId, status, token, amountCents, currency,
stripeId, orderVersion, due?, version, createdAt}. Status, in the order it moves:

    authorizing → authorized → captured            (orders completed the order)
                             → voided              (orders cancelled it: hold released)
                  captured   → refunded            (a capture on an order not complete)

A payment starts as an attempt (`authorizing`) before the provider is called: the unique
index on `orderId` lets one attempt exist per order, so simultaneous requests share it
and its idempotency key — one authorization. A declined attempt is deleted (the order
stays payable; the next attempt gets a new key). Every later move is made by the
settler (`payments.settlement`), each with its own idempotency key and event.

Orders (replica, from order.created / .completed / .cancelled, in version order):
{_id: order id, userId, status, priceCents, expiresAt, version, reason?} — `reason`: why
orders cancelled it (order.cancelled version 2; none for a buyer's cancel or a version 1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.events import (
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderCreatedEvent,
    OrderStatus,
    PaymentAuthorizedEvent,
)
from common.money import price_to_cents
from common.outbox import Outbox, find_one, get_by_id
from common.replica import apply_in_order
from payments.providers import CardDeclined, Charge, InvalidToken, PaymentProvider

PAYMENTS = "payments"
ORDERS = "orders"
AUTHORIZING, AUTHORIZED, CAPTURED = "authorizing", "authorized", "captured"
VOIDED, REFUNDED = "voided", "refunded"
DUE = "due"  # the payment's order changed: the settler looks at it again
INDEXES = {
    PAYMENTS: [
        IndexModel("orderId", unique=True, name="one_payment_per_order"),
        IndexModel("status", name="by_status"),
        IndexModel(DUE, name="due", sparse=True),
        IndexModel("stripeId", name="by_intent", sparse=True),  # a webhook names the intent
        IndexModel("createdAt", name="by_time"),  # the reconciliation reads a period
    ]
}

Doc = dict[str, Any]


def idempotency_key(attempt: Doc) -> str:
    return f"payment-{attempt['_id']}"


async def authorize_attempt(
    db: AsyncDatabase[Any], provider: PaymentProvider, attempt: Doc
) -> Charge:
    """The hold for a payment attempt, under its key (asked again, the same hold),
    naming the payment to the provider (a webhook about it finds it by that). A card
    the provider refuses (CardDeclined, InvalidToken) drops the attempt, so the order
    can be paid with another card; an unreachable provider (ProviderUnavailable) leaves
    it, to be asked again with the same key."""
    try:
        return await provider.authorize(
            amount_cents=attempt["amountCents"],
            currency=attempt["currency"],
            token=attempt["token"],
            idempotency_key=idempotency_key(attempt),
            reference=str(attempt["_id"]),
        )
    except (CardDeclined, InvalidToken):
        await db[PAYMENTS].delete_one({"_id": attempt["_id"], "status": AUTHORIZING})
        raise


def authorized_event(doc: Doc) -> PaymentAuthorizedEvent:
    return PaymentAuthorizedEvent(
        id=str(doc["_id"]),
        orderId=doc["orderId"],
        amountCents=doc["amountCents"],
        orderVersion=doc["orderVersion"],
    )


async def get_order(db: AsyncDatabase[Any], order_id: str) -> Doc | None:
    return await db[ORDERS].find_one({"_id": order_id})


async def get_payment(db: AsyncDatabase[Any], order_id: str) -> Doc | None:
    """Read whole: the settler's update of it needs no second read."""
    return await find_one(db[PAYMENTS], {"orderId": order_id})


async def start_attempt(db: AsyncDatabase[Any], order: Doc, token: str, currency: str) -> Doc:
    """The order's payment attempt: a new one, or the one already there (in flight, left
    by a crash, or further on)."""
    attempt = {
        "_id": ObjectId(),
        "orderId": order["_id"],
        "userId": order["userId"],
        "status": AUTHORIZING,
        "token": token,
        "amountCents": order["priceCents"],
        "currency": currency,
        "orderVersion": order["version"],
        "version": 0,
        "createdAt": datetime.now(UTC),
    }
    try:
        await db[PAYMENTS].insert_one(attempt)
        return attempt
    except DuplicateKeyError:
        existing = await get_payment(db, order["_id"])
        if existing is None:  # dropped (declined) in between: start afresh
            return await start_attempt(db, order, token, currency)
        return existing


async def get_payment_by_id(db: AsyncDatabase[Any], payment_id: str) -> Doc | None:
    """A payment by its own id (what the provider's records name it by)."""
    return await get_by_id(db[PAYMENTS], payment_id)


async def record_authorized(outbox: Outbox, attempt: Doc, charge: Charge) -> Doc:
    """The authorization, saved with its payment.authorized event in one write
    (VersionConflict if a simultaneous request saved it first)."""
    changes = {"status": AUTHORIZED, "stripeId": charge.id, "token": None}
    return await outbox.update(PAYMENTS, attempt, changes, authorized_event)


async def apply_order(
    db: AsyncDatabase[Any], event: OrderCreatedEvent | OrderCompletedEvent | OrderCancelledEvent
) -> bool:
    """Keep the order replica in version order. A captured payment whose order changed
    is marked due, so the settler looks at it again even if this process stops now
    (its loop looks at every authorized payment anyway)."""
    if isinstance(event, OrderCreatedEvent):
        fields: Doc = {
            "userId": event.userId,
            "status": event.status.value,
            "priceCents": price_to_cents(event.ticket.price),
            "expiresAt": event.expiresAt,
        }
    elif isinstance(event, OrderCompletedEvent):
        fields = {"status": OrderStatus.COMPLETE.value}
    else:  # why orders cancelled it (version 2), kept beside what became of its payment
        fields = {"status": OrderStatus.CANCELLED.value}
        if event.reason:
            fields["reason"] = event.reason
    applied = await apply_in_order(db[ORDERS], event.id, event.version, fields)
    if isinstance(event, OrderCancelledEvent):  # the one change that moves a capture
        await db[PAYMENTS].update_one(
            {"orderId": event.id, "status": CAPTURED}, {"$set": {DUE: True}}
        )
    return applied
