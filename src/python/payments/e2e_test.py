"""Paying end to end, across processes: tickets, orders, expiration and payments each run
as a service of their own on a REAL nats-server and MongoDB-wire server."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from bson import ObjectId

from harness.servers import ServiceProcess
from harness.stripe import StripeServer
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.settings import process_env
from testkit.waiting import eventually

EXPIRES_IN = 10  # seconds: payments closes 5 s before, so pay within the first 5


@pytest.fixture(params=["test", "stripe"])
def provider(request, tmp_path) -> Iterator[StripeServer | None]:
    """The payments test provider, or Stripe's path (the SDK) against a stateful
    Stripe-compatible server (harness.stripe)."""
    if request.param == "test":
        yield None
        return
    with StripeServer(tmp_path / "stripe") as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def services(mongo_server, nats_server, nats_manager, provider, tmp_path):
    stripe = provider.provider_env() if provider else {}
    shared = process_env(
        mongo_server,
        nats_server,
        OUTBOX_INTERVAL="0.2",
        ORDER_EXPIRATION_SECONDS=str(EXPIRES_IN),
        **stripe,
    )
    started = [
        ServiceProcess(name, f"{name}.main", shared, tmp_path / name).start()
        for name in ("tickets", "orders", "expiration", "payments")
    ]
    yield {process.name: process.url for process in started}  # type: ignore[attr-defined]
    for process in reversed(started):
        process.stop()


async def test_sell_order_pay_complete_and_the_expiry_changes_nothing(services, provider):
    seller = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))
    buyer = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))
    tickets = httpx.AsyncClient(base_url=services["tickets"], cookies=seller)
    orders = httpx.AsyncClient(base_url=services["orders"], cookies=buyer)
    payments = httpx.AsyncClient(base_url=services["payments"], cookies=buyer)
    async with tickets, orders, payments:
        ticket = (await tickets.post("/api/tickets", json={"title": "Gig", "price": 19.99})).json()
        order = (
            await _when_known(lambda: orders.post("/api/orders", json={"ticketId": ticket["id"]}))
        ).json()

        async def pay(token: str) -> httpx.Response:
            return await payments.post(
                "/api/payments", json={"orderId": order["id"], "token": token}
            )

        declined = await _when_known(lambda: pay("tok_chargeDeclined"))
        assert declined.status_code == 402
        assert declined.json() == {"errors": [{"message": "Your card was declined."}]}
        paid = await pay("tok_visa")
        assert paid.status_code == 201, paid.text
        assert paid.json()["orderId"] == order["id"]

        async def order_status() -> str:
            return (await orders.get(f"/api/orders/{order['id']}")).json()["status"]

        await eventually(lambda: _equals(order_status(), "complete"))
        cancel = await orders.delete(f"/api/orders/{order['id']}")
        assert cancel.json() == {"errors": [{"message": "Cannot cancel a paid order"}]}
        await asyncio.sleep(EXPIRES_IN + 2)  # past the expiry: it must change nothing
        assert await order_status() == "complete"
        shown = (await tickets.get(f"/api/tickets/{ticket['id']}")).json()
        assert shown["orderId"] == order["id"]  # sold: still held by the paid order
        assert (await pay("tok_visa")).json() == {"errors": [{"message": "Order already paid"}]}
    if provider is not None:  # the provider's own view: the declined card, and one capture
        by_amount = sorted((i["amount"], i["status"]) for i in provider.intents())
        assert by_amount == [(1999, "requires_payment_method"), (1999, "succeeded")]


async def _when_known(request) -> httpx.Response:
    """Send `request()` until the service has heard of what it names (404 until then)."""
    last: list[httpx.Response] = []

    async def known() -> bool:
        last[:] = [await request()]
        return last[0].status_code != 404

    await eventually(known)
    return last[0]


async def _equals(value, expected) -> bool:
    return await value == expected
