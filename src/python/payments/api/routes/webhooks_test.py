"""POST /api/payments/webhook on the REAL MongoDB-wire server, events recorded by the
fake, each body signed as Stripe signs it (the SDK's own helper,
`stripe.WebhookSignature.generate_signature_header`)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import stripe
from bson import ObjectId

from payments.main import create_payments_app
from payments.providers import TestProvider
from testkit.http import app_client

URL = "/api/payments/webhook"
SECRET = "whsec_test_local"  # a test's


@pytest.fixture
async def hooks(make_settings, clean_db, recording_nats):
    settings = make_settings(
        PAYMENT_PROVIDER="stripe", STRIPE_SECRET_KEY="sk_test_local", STRIPE_WEBHOOK_SECRET=SECRET
    )
    app = create_payments_app(
        settings, database=clean_db.name, nats=recording_nats, provider=TestProvider()
    )
    async with app_client(app) as client:
        yield client


def signed(event: dict[str, Any], secret: str = SECRET, at: int | None = None) -> dict[str, Any]:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=at)
    return {
        "content": body,
        "headers": {"content-type": "application/json", "stripe-signature": header},
    }


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{ObjectId()}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def intent(intent_id: str, status: str, payment_id: str = "") -> dict[str, Any]:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": status,
        "metadata": {"payment": payment_id},
    }


async def a_payment(db, status: str, order_status: str, stripe_id: str | None = "pi_1") -> dict:
    order_id = str(ObjectId())
    await db.orders.insert_one(
        {"_id": order_id, "userId": "u", "status": order_status, "priceCents": 1000, "version": 1}
    )
    payment = {
        "_id": ObjectId(),
        "orderId": order_id,
        "userId": "u",
        "status": status,
        "token": "tok_visa" if status == "authorizing" else None,
        "amountCents": 1000,
        "currency": "usd",
        "stripeId": stripe_id,
        "orderVersion": 0,
        "version": 0,
        "createdAt": None,
    }
    await db.payments.insert_one(payment)
    return payment


async def status_of(db, payment: dict) -> str:
    return (await db.payments.find_one({"_id": payment["_id"]}))["status"]


async def test_webhooks_are_off_unless_stripe_and_a_secret_are_set(client):
    response = await client.post(
        URL, **signed(event("payment_intent.canceled", intent("pi_1", "canceled")))
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "how", ["another secret", "no signature", "an hour old", "a body changed after signing"]
)
async def test_a_bad_signature_is_400_and_changes_nothing(hooks, clean_db, recording_nats, how):
    payment = await a_payment(clean_db, "authorized", "cancelled")
    sent = event("payment_intent.canceled", intent("pi_1", "canceled"))
    request = {
        "another secret": lambda: signed(sent, secret="whsec_other"),
        "no signature": lambda: {**signed(sent), "headers": {"content-type": "application/json"}},
        "an hour old": lambda: signed(sent, at=int(time.time()) - 3600),
        "a body changed after signing": lambda: {
            **signed(sent),
            "content": json.dumps({**sent, "id": "evt_x"}),
        },
    }[how]()
    response = await hooks.post(URL, **request)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "Invalid Stripe signature"}]}
    assert await status_of(clean_db, payment) == "authorized"
    assert recording_nats.published == []


async def test_a_release_of_a_cancelled_orders_hold_voids_it_once_however_often_sent(
    hooks, clean_db, recording_nats
):
    payment = await a_payment(clean_db, "authorized", "cancelled")
    sent = event("payment_intent.canceled", intent("pi_1", "canceled"))
    first = await hooks.post(URL, **signed(sent))
    assert first.json() == {"received": True, "outcome": "authorized → voided"}
    again = await hooks.post(URL, **signed(sent))  # the same event, delivered twice
    assert again.json() == {"received": True, "outcome": "seen before"}
    other = await hooks.post(
        URL, **signed(event("payment_intent.canceled", intent("pi_1", "canceled")))
    )
    assert other.json()["outcome"] == "already so"
    assert await status_of(clean_db, payment) == "voided"
    assert [m.subject for m in recording_nats.published] == ["payment.voided"]


async def test_a_hold_whose_answer_was_lost_is_found_by_the_payment_it_names(
    hooks, clean_db, recording_nats
):
    payment = await a_payment(clean_db, "authorizing", "created", stripe_id=None)
    held = intent("pi_lost", "requires_capture", payment_id=str(payment["_id"]))
    response = await hooks.post(
        URL, **signed(event("payment_intent.amount_capturable_updated", held))
    )
    assert response.json()["outcome"] == "authorizing → authorized"
    stored = await clean_db.payments.find_one({"_id": payment["_id"]})
    assert (stored["status"], stored["stripeId"], stored["token"]) == (
        "authorized",
        "pi_lost",
        None,
    )
    assert [m.subject for m in recording_nats.published] == ["payment.authorized"]  # orders decides


async def test_a_capture_whose_answer_was_lost_is_recorded_and_an_order_not_complete_is_refunded(
    hooks, clean_db, recording_nats
):
    complete = await a_payment(clean_db, "authorized", "complete", stripe_id="pi_c")
    cancelled = await a_payment(clean_db, "authorized", "cancelled", stripe_id="pi_x")
    for intent_id in ("pi_c", "pi_x"):
        response = await hooks.post(
            URL, **signed(event("payment_intent.succeeded", intent(intent_id, "succeeded")))
        )
        assert response.json()["outcome"] == "authorized → captured"
    assert await status_of(clean_db, complete) == "captured"
    due = await clean_db.payments.find_one({"_id": cancelled["_id"]})
    assert (due["status"], due.get("due")) == ("captured", True)  # the settler refunds it
    assert [m.subject for m in recording_nats.published] == ["payment.created", "payment.created"]


async def test_a_refund_before_its_capture_is_sent_again_later_then_applies(
    hooks, clean_db, recording_nats
):
    """Events in any order: the refund first is a 409 (not remembered), so Stripe's
    next delivery of it applies once the capture is there."""
    payment = await a_payment(clean_db, "authorized", "complete", stripe_id="pi_r")
    refunded = event(
        "charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": "pi_r"}
    )
    early = await hooks.post(URL, **signed(refunded))
    assert early.status_code == 409
    assert await status_of(clean_db, payment) == "authorized"
    await hooks.post(URL, **signed(event("payment_intent.succeeded", intent("pi_r", "succeeded"))))
    later = await hooks.post(URL, **signed(refunded))  # Stripe's retry of the same event
    assert later.json()["outcome"] == "captured → refunded"
    assert [m.subject for m in recording_nats.published] == ["payment.created", "payment.refunded"]


async def test_a_release_for_an_order_that_completed_is_a_difference_not_a_move(
    hooks, clean_db, recording_nats
):
    """Stripe released a hold orders meant to capture (expired after 7 days): not a
    move of the table — the reconciliation reports it."""
    payment = await a_payment(clean_db, "authorized", "complete", stripe_id="pi_e")
    response = await hooks.post(
        URL, **signed(event("payment_intent.canceled", intent("pi_e", "canceled")))
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "difference: ours authorized, Stripe's released"
    assert await status_of(clean_db, payment) == "authorized"
    assert recording_nats.published == []


async def test_events_about_no_payment_of_ours_are_acknowledged(hooks):
    unknown = await hooks.post(
        URL, **signed(event("payment_intent.canceled", intent("pi_nobody", "canceled")))
    )
    assert unknown.json()["outcome"] == "no payment of ours"
    other = await hooks.post(
        URL, **signed(event("customer.created", {"id": "cus_1", "object": "customer"}))
    )
    assert other.json()["outcome"] == "not about a payment's money"


async def test_a_body_that_is_not_json_is_400(hooks):
    body = "not json"
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    response = await hooks.post(
        URL, content=body, headers={"content-type": "application/json", "stripe-signature": header}
    )
    assert response.status_code == 400
    assert isinstance(response, httpx.Response)


async def test_a_dispute_is_kept_on_its_payment_and_told_once(hooks, clean_db, recording_nats):
    payment = await a_payment(clean_db, "captured", "complete", stripe_id="pi_d")
    dispute = {"id": "dp_1", "object": "dispute", "payment_intent": "pi_d", "reason": "fraudulent"}
    first = await hooks.post(URL, **signed(event("charge.dispute.created", dispute)))
    assert first.json()["outcome"] == "captured, disputed"
    again = await hooks.post(URL, **signed(event("charge.dispute.created", dispute)))  # another id
    assert again.json()["outcome"] == "already so"
    stored = await clean_db.payments.find_one({"_id": payment["_id"]})
    assert (stored["status"], stored["dispute"]) == (
        "captured",
        {"id": "dp_1", "reason": "fraudulent"},
    )
    [told] = recording_nats.published
    assert told.subject == "payment.disputed"
    assert told.data == {
        "id": str(payment["_id"]),
        "orderId": payment["orderId"],
        "disputeId": "dp_1",
        "reason": "fraudulent",
    }
