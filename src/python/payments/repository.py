"""Payments, and the replica of orders this service keeps.

Payments: {_id, orderId (unique), userId, status: charging | succeeded, token,
amountCents, currency, stripeId, version, createdAt}. A payment starts as an attempt
(`charging`) before the provider is called: the unique index on `orderId` lets one
attempt exist per order, so simultaneous requests share it and its idempotency key —
one charge. A declined attempt is deleted (the order stays payable; the next attempt
gets a new key). An attempt left `charging` (the process died after the charge) is
continued by the next request with its own key: the provider answers with the same
charge, and the payment is saved then.

Orders (replica, from order.created / order.cancelled, in version order):
{_id: order id, userId, status, priceCents, expiresAt, version}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.events import OrderCancelledEvent, OrderCreatedEvent, OrderStatus, PaymentCreatedEvent
from common.money import price_to_cents
from common.outbox import PENDING, Outbox
from common.replica import apply_in_order
from payments.providers import Charge

PAYMENTS = "payments"
ORDERS = "orders"
CHARGING, SUCCEEDED = "charging", "succeeded"
INDEXES = {PAYMENTS: [IndexModel("orderId", unique=True, name="one_payment_per_order")]}

Doc = dict[str, Any]


def idempotency_key(attempt: Doc) -> str:
    return f"payment-{attempt['_id']}"


def created_event(doc: Doc) -> PaymentCreatedEvent:
    return PaymentCreatedEvent(id=str(doc["_id"]), orderId=doc["orderId"], stripeId=doc["stripeId"])


async def get_order(db: AsyncDatabase[Any], order_id: str) -> Doc | None:
    return await db[ORDERS].find_one({"_id": order_id})


async def is_paid(db: AsyncDatabase[Any], order_id: str) -> bool:
    return await db[PAYMENTS].count_documents({"orderId": order_id, "status": SUCCEEDED}) == 1


async def start_attempt(db: AsyncDatabase[Any], order: Doc, token: str, currency: str) -> Doc:
    """The order's payment attempt: a new one, or the one already there (in flight, left
    by a crash, or succeeded)."""
    attempt = {
        "_id": ObjectId(),
        "orderId": order["_id"],
        "userId": order["userId"],
        "status": CHARGING,
        "token": token,
        "amountCents": order["priceCents"],
        "currency": currency,
        "version": 0,
        "createdAt": datetime.now(UTC),
    }
    try:
        await db[PAYMENTS].insert_one(attempt)
        return attempt
    except DuplicateKeyError:
        existing = await db[PAYMENTS].find_one({"orderId": order["_id"]}, {PENDING: 0})
        if existing is None:  # dropped (declined) in between: start afresh
            return await start_attempt(db, order, token, currency)
        return existing


async def drop_attempt(db: AsyncDatabase[Any], attempt: Doc) -> None:
    """A refused attempt goes, so the order can be paid with another card."""
    await db[PAYMENTS].delete_one({"_id": attempt["_id"], "status": CHARGING})


async def record_success(outbox: Outbox, attempt: Doc, charge: Charge) -> Doc:
    """The payment, saved with its payment.created event in one write (VersionConflict
    if a simultaneous request saved it first)."""
    changes = {"status": SUCCEEDED, "stripeId": charge.id, "token": None}
    return await outbox.update(PAYMENTS, attempt, changes, created_event)


async def apply_order(
    db: AsyncDatabase[Any], event: OrderCreatedEvent | OrderCancelledEvent
) -> bool:
    if isinstance(event, OrderCreatedEvent):
        fields: Doc = {
            "userId": event.userId,
            "status": event.status.value,
            "priceCents": price_to_cents(event.ticket.price),
            "expiresAt": event.expiresAt,
        }
    else:
        fields = {"status": OrderStatus.CANCELLED.value}
    return await apply_in_order(db[ORDERS], event.id, event.version, fields)
