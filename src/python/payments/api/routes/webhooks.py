"""POST /api/payments/webhook: what Stripe says happened to a payment's money, signed.

Stripe sends each change of a PaymentIntent or a charge as an event, signed with the
endpoint's secret (`Stripe-Signature`: HMAC-SHA256 over the timestamp and the raw body);
an event may come twice and in any order. It matters when our own call's answer was
lost (a capture that succeeded while our request timed out) or when the money moved
outside our calls (a hold expired after 7 days, a refund from the dashboard).

The signature is checked on the raw body (the SDK's `Webhook.construct_event`, within
the tolerance window): a bad or stale one is a 400 and changes nothing. An event seen
before (its id) is acknowledged and ignored. Otherwise the intent's state in the event
moves the payment it belongs to — only where the settler's table goes, and only
forward, each move saved with its event in one write (the outbox):

| Stripe says (intent)   | our payment            | becomes    | event              |
|------------------------|------------------------|------------|--------------------|
| held or taken          | authorizing            | authorized | payment.authorized |
| taken (succeeded)      | authorized             | captured   | payment.created    |
| released (canceled)    | authorized, order over | voided     | payment.voided     |
| refunded (charge)      | captured               | refunded   | payment.refunded   |
| disputed (charge)      | any: kept on it        | (the same) | payment.disputed   |

An event ahead of what we have seen (a refund of a capture whose event has not come) is
answered 409 and not remembered: Stripe sends it again later, when it applies. Anything
else (a release Stripe made for an order that completed) is no move of ours: it is
logged as a difference for the reconciliation (`payments.reconciliation`) to report. A
captured payment whose order did not complete is marked due: the settler refunds it.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Depends, Request
from pymongo.errors import DuplicateKeyError

from common.deps import DbDep, OutboxDep, get_settings
from common.errors import BadRequestError, ConflictError, NotFoundError
from common.events import OrderStatus, PaymentDisputedEvent
from common.mongo import VersionConflict
from payments import repository
from payments.core.config import PaymentsSettings
from payments.providers import Charge
from payments.reconciliation import NONE, where_stripe_has_it
from payments.repository import AUTHORIZED, AUTHORIZING, CAPTURED, DUE, PAYMENTS, REFUNDED, VOIDED
from payments.settlement import CAPTURE, REFUND, VOID, Move

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/payments", tags=["payments"])
SettingsDep = Annotated[PaymentsSettings, Depends(get_settings)]

SEEN = "webhook_events"  # the ids of the events handled (Stripe may send one twice)
ATTEMPTS = 3  # a move racing the settler reads the payment again


class WebhooksOff(NotFoundError):
    default_message = "Not found"


class NotYet(ConflictError):
    default_message = "This event is ahead of what payments has seen: send it again later"


@router.post("/webhook", include_in_schema=False)
async def stripe_webhook(
    request: Request, settings: SettingsDep, db: DbDep, outbox: OutboxDep
) -> dict[str, Any]:
    secret = settings.stripe_webhook_secret
    if settings.payment_provider != "stripe" or secret is None:
        raise WebhooksOff()
    body = await request.body()
    try:
        stripe.WebhookSignature.verify_header(
            body,
            request.headers.get("stripe-signature"),
            secret.get_secret_value(),
            tolerance=settings.stripe_webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError:
        raise BadRequestError("Invalid Stripe signature") from None
    event = _event(body)
    if await db[SEEN].find_one({"_id": event["id"]}):
        return {"received": True, "outcome": "seen before"}
    outcome = await _apply(db, outbox, event["type"], event["data"]["object"])
    try:  # after the move: an event whose move failed comes again, and is applied then
        await db[SEEN].insert_one({"_id": event["id"], "type": event["type"], "outcome": outcome})
    except DuplicateKeyError:
        pass  # the same event, handled at the same time by another request
    log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return {"received": True, "outcome": outcome}


def _event(body: bytes) -> dict[str, Any]:
    """The signed body as Stripe's event: {id, type, data: {object}}."""
    try:
        event = json.loads(body)
        assert isinstance(event["id"], str) and isinstance(event["type"], str)
        assert isinstance(event["data"]["object"], dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise BadRequestError("Not a Stripe event") from None
    return event


def _stripe_state(event_type: str, obj: Any) -> tuple[str | None, str | None]:
    """(the intent's id, where its money is: held, taken, released, refunded)."""
    if event_type.startswith("payment_intent."):
        state = where_stripe_has_it(obj, refunded=False)  # held, taken, released (or none)
        return obj.get("id"), None if state == NONE else state
    if event_type == "charge.refunded":
        return obj.get("payment_intent"), "refunded"
    if event_type == "charge.dispute.created":
        return obj.get("payment_intent"), "disputed"
    return None, None


async def _apply(db: Any, outbox: Any, event_type: str, obj: Any) -> str:
    intent_id, state = _stripe_state(event_type, obj)
    if intent_id is None or state is None:
        return "not about a payment's money"
    for _ in range(ATTEMPTS):
        payment = await db[PAYMENTS].find_one({"stripeId": intent_id})
        if payment is None:  # an attempt whose answer was lost: named in the intent
            payment_id = ((obj.get("metadata") or {}).get("payment")) or ""
            payment = await repository.get_payment_by_id(db, payment_id)
        if payment is None:
            return "no payment of ours"
        try:
            if state == "disputed":
                return await _disputed(outbox, payment, obj)
            return await _move(db, outbox, payment, intent_id, state)
        except VersionConflict:
            continue  # the settler moved it meanwhile: decide again on what it is now
    raise VersionConflict()


async def _move(db: Any, outbox: Any, payment: dict[str, Any], intent_id: str, state: str) -> str:
    status = payment["status"]
    order = await repository.get_order(db, payment["orderId"])
    order_status = order["status"] if order else None
    changes: dict[str, Any]
    move: Move
    if state in ("held", "taken") and status == AUTHORIZING:  # its answer was lost
        await repository.record_authorized(outbox, payment, Charge(id=intent_id))
        return f"{status} → {AUTHORIZED}"  # orders decides; the settler moves it on
    if state == "taken" and status == AUTHORIZED:
        due = order_status != OrderStatus.COMPLETE  # money taken for an order not complete
        move, changes = CAPTURE, {"stripeId": intent_id, DUE: due or None}
    elif state == "released" and status == AUTHORIZED and order_status == OrderStatus.CANCELLED:
        move, changes = VOID, {DUE: None}
    elif state == "refunded" and status == CAPTURED:
        if order_status == OrderStatus.COMPLETE:
            log.warning("payment %s: Stripe refunded a complete order's money", payment["_id"])
        move, changes = REFUND, {DUE: None}
    elif (state, status) in _AHEAD:
        raise NotYet()
    else:
        if (state, status) not in _SAME:
            log.warning(
                "payment %s is %s (order %s) but Stripe says %s: a difference for the reconciliation",
                payment["_id"], status, order_status, state,
            )  # fmt: skip
            return f"difference: ours {status}, Stripe's {state}"
        return "already so"
    await outbox.update(PAYMENTS, payment, {**changes, "status": move.status}, move.event_for)
    return f"{status} → {move.status}"


async def _disputed(outbox: Any, payment: dict[str, Any], dispute: Any) -> str:
    """A dispute is kept on its payment and told once (`payment.disputed`): no state of
    ours moves — the bank decides, and the money is where Stripe says."""
    dispute_id = str(dispute.get("id") or "")
    if (payment.get("dispute") or {}).get("id") == dispute_id:
        return "already so"
    reason = str(dispute.get("reason") or "")
    await outbox.update(
        PAYMENTS,
        payment,
        {"dispute": {"id": dispute_id, "reason": reason}},
        lambda doc: PaymentDisputedEvent(
            id=str(doc["_id"]), orderId=doc["orderId"], disputeId=dispute_id, reason=reason
        ),
    )
    return f"{payment['status']}, disputed"


_SAME = {("held", AUTHORIZED), ("taken", CAPTURED), ("released", VOIDED), ("refunded", REFUNDED)}
# Stripe is ahead of what we have seen (events come in any order): a refund of a capture
# not seen yet, a release of a hold not recorded yet — answered 409, so Stripe sends it
# again later (it retries for days), when the move before it is there
_AHEAD = {("refunded", AUTHORIZING), ("refunded", AUTHORIZED), ("released", AUTHORIZING)}
