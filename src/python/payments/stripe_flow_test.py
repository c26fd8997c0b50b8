"""The Stripe path end to end: the payments service with `PAYMENT_PROVIDER=stripe` (the
official SDK) against a stateful Stripe-compatible server (localstripe, harness.stripe),
with tickets, orders and expiration as processes of their own on a REAL nats-server and
MongoDB-wire server. Pay and cancel race twenty times at the same instant, and five
buyers pay plainly; then our
ledger and Stripe's are compared (payments.reconciliation): no difference — every
captured payment is one succeeded intent, every voided one a canceled intent, no intent
holds money no payment names — and the auditor finds nothing on the stream. The
server's own signed webhooks reach the payments service, are verified, and say nothing
that differs from what payments recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from harness.stripe import SECRET_KEY
from payments.conftest import Market, bought
from payments.providers import StripeProvider
from payments.reconciliation import Reconciler, differences
from testkit.waiting import eventually


@pytest.fixture(scope="module")
def market(mongo_server, nats_server, stripe_server, tmp_path_factory) -> Iterator[Market]:
    workdir = tmp_path_factory.mktemp("market")
    market = Market(mongo_server, nats_server, workdir, 120, stripe_server.provider_env()).start()
    # the server signs its events and sends them to payments
    stripe_server.send_webhooks_to(f"{market.processes['payments'].url}/api/payments/webhook")
    yield market
    market.stop()


async def test_pay_cancel_races_leave_stripes_books_equal_to_ours(market, stripe_server):
    async def one_round() -> dict:
        _, buyer, order = await bought(market)
        await asyncio.gather(market.pay(buyer, order["id"]), market.cancel(buyer, order["id"]))
        return await market.settled(buyer, order["id"])

    async def paid_round() -> dict:  # (the cancel mostly wins the race: some plain buys)
        _, buyer, order = await bought(market)
        assert (await market.pay(buyer, order["id"])).status_code == 201
        return await market.settled(buyer, order["id"])

    finals = await asyncio.gather(
        *(one_round() for _ in range(20)), *(paid_round() for _ in range(5))
    )
    outcomes = {(f["status"], f["money"]) for f in finals}
    assert ("complete", "captured") in outcomes
    assert outcomes <= {("complete", "captured"), ("cancelled", "voided"), ("cancelled", None)}
    payments = await market.mongo.payments.payments.find().to_list()
    intents = await asyncio.to_thread(stripe_server.intents)
    refunded = {
        r["payment_intent"]
        for i in intents
        for r in await asyncio.to_thread(stripe_server.refunds, i["id"])
    }
    assert differences(payments, intents, refunded) == []
    assert len(intents) == len([p for p in payments if p.get("stripeId")])  # one each
    assert {i["status"] for i in intents} <= {"succeeded", "canceled"}
    await market.audit_clean()

    captured = [i for i in intents if i["status"] == "succeeded"]

    async def webhooks_heard() -> bool:  # a capture's event, a second after it
        return await market.mongo.payments.webhook_events.count_documents({}) >= len(captured)

    await eventually(webhooks_heard, within=30)
    outcomes = await market.mongo.payments.webhook_events.distinct("outcome")
    assert outcomes == ["already so"], outcomes  # it told payments nothing new


async def test_the_reconciliation_finds_the_books_equal_then_heals_a_stray_hold_and_reports_the_rest(
    market, stripe_server
):
    """After the trading above: nothing differs. Then a hold no payment of ours names (its
    attempt was dropped) is voided; a payment we think captured that Stripe only holds
    cannot be healed by a rule, so it is reported (and counted for the alert)."""
    provider = StripeProvider(SECRET_KEY, stripe_server.url)
    db = market.mongo.payments
    reconciler = Reconciler(db, provider, interval=0, grace=timedelta(0))
    first = await reconciler.run()
    assert (first.healed, first.left) == ([], [])
    assert first.payments >= 5 and first.charges == first.payments  # one intent each
    stray = await provider.authorize(
        amount_cents=1500,
        currency="usd",
        token="tok_visa",
        idempotency_key="stray",
        reference=str(ObjectId()),
    )
    held = await provider.authorize(
        amount_cents=1600, currency="usd", token="tok_visa", idempotency_key="held"
    )
    ours = {
        "_id": ObjectId(),
        "orderId": str(ObjectId()),
        "status": "captured",
        "amountCents": 1600,
        "stripeId": held.id,
        "createdAt": datetime.now(UTC) - timedelta(minutes=10),
    }
    await db.payments.insert_one(ours)
    try:
        second = await reconciler.run()
    finally:
        await db.payments.delete_one({"_id": ours["_id"]})
    assert [(d.kind, d.intent) for d in second.healed] == [("unknown", stray.id)]
    assert stripe_server.get(f"/v1/payment_intents/{stray.id}")["status"] == "canceled"
    assert [(d.kind, d.intent, d.ours, d.theirs) for d in second.left] == [
        ("state", held.id, "taken", "held")
    ]
    assert reconciler.left == 1  # payments_reconciliation_differences
