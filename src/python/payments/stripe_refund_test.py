"""The Stripe path's refund, end to end: money Stripe took for an order that did not
complete is given back. It happens only when a capture's answer is lost (or money is
captured outside our calls): here orders is frozen (SIGSTOP) while the buyer pays, and
the hold is captured at the Stripe-compatible server directly. Stripe's signed webhook
tells payments (captured, marked due); orders, thawed past the order's expiry, cancels
it; the settler refunds at Stripe. Then our books equal Stripe's (one intent, succeeded,
one refund) and the auditor finds nothing."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from datetime import timedelta

import pytest

from harness.stripe import SECRET_KEY
from payments.conftest import Market, bought
from payments.providers import StripeProvider
from payments.reconciliation import Reconciler
from testkit.waiting import eventually

EXPIRES_IN = 10  # seconds: payments takes a payment until 5 s before


@pytest.fixture(scope="module")
def market(mongo_server, nats_server, stripe_server, tmp_path_factory) -> Iterator[Market]:
    workdir = tmp_path_factory.mktemp("market")
    market = Market(
        mongo_server, nats_server, workdir, EXPIRES_IN, stripe_server.provider_env()
    ).start()
    stripe_server.send_webhooks_to(f"{market.processes['payments'].url}/api/payments/webhook")
    yield market
    market.stop()


async def test_money_taken_for_an_order_that_did_not_complete_is_refunded(market, stripe_server):
    _, buyer, order = await bought(market)
    orders = market.processes["orders"].process
    assert orders is not None
    os.killpg(orders.pid, signal.SIGSTOP)  # orders decides nothing for now
    try:
        paid = await market.pay(buyer, order["id"])
        assert paid.status_code == 201, paid.text
        intent_id = paid.json()["stripeId"]
        provider = StripeProvider(SECRET_KEY, stripe_server.url)
        await provider.capture(intent_id, idempotency_key="outside-capture")  # not ours

        async def captured_as_stripe_says() -> bool:  # its webhook, a second later
            payment = await market.payment(order["id"])
            return payment is not None and payment["status"] == "captured" and payment.get("due")

        await eventually(captured_as_stripe_says, within=30)
        await asyncio.sleep(EXPIRES_IN)  # the order's time runs out meanwhile
    finally:
        os.killpg(orders.pid, signal.SIGCONT)
    final = await market.settled(buyer, order["id"])
    assert (final["status"], final["money"]) == ("cancelled", "refunded")
    assert stripe_server.get(f"/v1/payment_intents/{intent_id}")["status"] == "succeeded"
    assert len(await asyncio.to_thread(stripe_server.refunds, intent_id)) == 1  # given back once
    run = await Reconciler(market.mongo.payments, provider, interval=0, grace=timedelta(0)).run()
    assert run.left == [] and run.healed == []
    await market.audit_clean()
