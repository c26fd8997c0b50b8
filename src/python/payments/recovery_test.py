"""Money through failures, across processes (the services as processes, as in
races_test.py, with a short order window): paying at the expiry boundary, and the payments service SIGKILLed
between the authorization and its capture (or its void) — exactly one capture, or
none, after recovery; the auditor finds nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from payments.conftest import Market, bought

EXPIRES_IN = 8  # seconds; payments stops taking payments 5 s before the expiry


@pytest.fixture
def market(mongo_server, nats_server, tmp_path):  # its own, per test: restarted in tests
    market = Market(mongo_server, nats_server, tmp_path, EXPIRES_IN).start()
    yield market
    market.stop()


async def test_paying_at_the_expiry_boundary_ends_complete_and_captured_or_cancelled_with_none(
    market,
):
    """Offsets from 6 s before the expiry to 1 s after it: each order ends `complete`
    with one capture, or `cancelled` with nothing held."""

    async def one(offset: float) -> dict:
        _, buyer, order = await bought(market)
        expires_at = datetime.fromisoformat(order["expiresAt"].replace("Z", "+00:00"))
        wait = (expires_at - datetime.now(UTC)).total_seconds() + offset
        await asyncio.sleep(max(wait, 0))
        await market.pay(buyer, order["id"])
        return await market.settled(buyer, order["id"])

    finals = await asyncio.gather(*(one(o) for o in (-6, -5.5, -5, -4, -2, -1, 0, 0.5, 1)))
    for final in finals:
        assert (final["status"], final["money"]) in {
            ("complete", "captured"),
            ("cancelled", None),
            ("cancelled", "voided"),
        }
    await market.audit_clean()


async def test_payments_killed_between_authorize_and_capture_captures_once_after_restart(market):
    orders, payments = market.processes["orders"], market.processes["payments"]
    _, buyer, order = await bought(market)
    orders.stop()  # orders will decide only once payments is down
    paid = await market.pay(buyer, order["id"])
    assert paid.status_code == 201
    payments.kill()  # SIGKILL: the authorization is saved, nothing captured
    orders.start()  # it completes the order: order.completed waits on the stream
    payments.start()
    final = await market.settled(buyer, order["id"])
    assert (final["status"], final["money"]) == ("complete", "captured")
    await market.audit_clean()  # one payment.created: captured exactly once


async def test_payments_killed_then_the_order_expires_the_hold_is_voided_after_restart(market):
    orders, payments = market.processes["orders"], market.processes["payments"]
    _, buyer, order = await bought(market)
    orders.stop()
    paid = await market.pay(buyer, order["id"])
    assert paid.status_code == 201
    payments.kill()
    expires_at = datetime.fromisoformat(order["expiresAt"].replace("Z", "+00:00"))
    await asyncio.sleep(max((expires_at - datetime.now(UTC)).total_seconds() + 1, 0))
    orders.start()  # too late for the authorization: orders cancels, payments must void
    payments.start()
    final = await market.settled(buyer, order["id"])
    assert (final["status"], final["money"]) == ("cancelled", "voided")
    assert final["reason"] == "The order expired before it was paid"
    await market.audit_clean()
