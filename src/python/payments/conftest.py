from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import nats
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from chaos import invariants
from common.audit import audit
from harness.servers import ServiceProcess
from harness.stripe import StripeServer
from payments.core.config import PaymentsSettings
from payments.main import create_payments_app
from payments.providers import TEST_CARDS, TestProvider
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.fixtures import *  # noqa: F403
from testkit.http import app_client
from testkit.settings import process_env, settings_for
from testkit.waiting import eventually

TEST_CARD = TEST_CARDS[0]  # Stripe's test Visa: authorizes


@pytest.fixture
def make_settings(mongo_server, nats_server) -> Callable[..., PaymentsSettings]:
    def _make(**overrides) -> PaymentsSettings:
        return settings_for(PaymentsSettings, mongo_server, nats_server, **overrides)

    return _make


@pytest.fixture(scope="module")
def stripe_server(tmp_path_factory) -> Iterator[StripeServer]:
    """A stateful Stripe-compatible server (harness.stripe), for a whole test file."""
    with StripeServer(tmp_path_factory.mktemp("stripe")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def provider() -> TestProvider:
    return TestProvider()


@pytest.fixture
async def client(
    make_settings, clean_db, recording_nats, provider
) -> AsyncIterator[httpx.AsyncClient]:
    """The payments app on the real MongoDB-wire server, events recorded by the fake."""
    app = create_payments_app(
        make_settings(), database=clean_db.name, nats=recording_nats, provider=provider
    )
    async with app_client(app) as c:
        yield c


# --- the whole buy path, as processes (races_test, recovery_test) -------------------

SERVICES = ("tickets", "orders", "expiration", "payments")


class Market:
    """The four services, and what a buyer and a seller do with them."""

    def __init__(
        self, mongo_server, nats_server, workdir, expires_in: int, env: dict[str, str] | None = None
    ) -> None:
        shared = process_env(
            mongo_server,
            nats_server,
            OUTBOX_INTERVAL="0.2",
            SETTLE_INTERVAL="0.2",
            ORDER_EXPIRATION_SECONDS=str(expires_in),
            LOG_FORMAT="text",
            **(env or {}),  # e.g. the Stripe path's settings
        )
        self.processes = {
            name: ServiceProcess(name, f"{name}.main", shared, workdir / name) for name in SERVICES
        }
        self.mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
        self.databases = invariants.Databases(
            self.mongo.tickets, self.mongo.orders, self.mongo.payments
        )
        self.nats_url = nats_server.url

    def start(self) -> Market:
        for process in self.processes.values():
            process.start()
        return self

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            process.stop()

    def client(self, service: str, user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.processes[service].url,
            cookies=session_cookie(TEST_JWT_KEY, user_id=user),
            timeout=30,
        )

    async def sell(self, seller: str, price: float = 10) -> dict:
        async with self.client("tickets", seller) as tickets:
            response = await tickets.post("/api/tickets", json={"title": "Gig", "price": price})
        assert response.status_code == 201, response.text
        return response.json()

    async def order(self, buyer: str, ticket_id: str) -> httpx.Response:
        """POST /api/orders once orders knows the ticket (404 until then)."""
        async with self.client("orders", buyer) as orders:
            placed: list[httpx.Response] = []

            async def known() -> bool:
                placed[:] = [await orders.post("/api/orders", json={"ticketId": ticket_id})]
                return placed[0].status_code != 404

            await eventually(known, within=60)
        return placed[0]

    async def orderable(self, ticket_id: str) -> None:
        """Orders has heard of the ticket (its replica has it)."""

        async def known() -> bool:
            return await self.mongo.orders.tickets.count_documents({"_id": ticket_id}) == 1

        await eventually(known, within=60)

    @contextlib.asynccontextmanager
    async def replica_rewound(
        self, ticket_id: str, version: int, price_cents: int
    ) -> AsyncIterator[None]:
        """Wait until orders' replica of the ticket is at `version`, then put it back to an
        older price — the moment before an edit reached the replica, made to last — and
        as it was again on leaving."""
        replica = self.mongo.orders.tickets

        async def applied() -> bool:
            return await replica.count_documents({"_id": ticket_id, "version": version}) == 1

        await eventually(applied, within=60)
        current = await replica.find_one({"_id": ticket_id}, {"priceCents": 1, "version": 1})
        await replica.update_one(
            {"_id": ticket_id}, {"$set": {"priceCents": price_cents, "version": version - 1}}
        )
        try:
            yield
        finally:
            await replica.update_one({"_id": ticket_id}, {"$set": current})

    async def payable(self, order_id: str) -> None:
        """Payments has heard of the order (its replica has it)."""

        async def known() -> bool:
            return await self.mongo.payments.orders.count_documents({"_id": order_id}) == 1

        await eventually(known, within=60)

    async def pay(self, buyer: str, order_id: str, token: str = TEST_CARD) -> httpx.Response:
        async with self.client("payments", buyer) as payments:
            return await payments.post("/api/payments", json={"orderId": order_id, "token": token})

    async def cancel(self, buyer: str, order_id: str) -> httpx.Response:
        async with self.client("orders", buyer) as orders:
            return await orders.delete(f"/api/orders/{order_id}")

    async def edit(self, seller: str, ticket_id: str, price: float) -> httpx.Response:
        async with self.client("tickets", seller) as tickets:
            return await tickets.put(
                f"/api/tickets/{ticket_id}", json={"title": "Gig", "price": price}
            )

    async def shown_order(self, buyer: str, order_id: str) -> dict:
        async with self.client("orders", buyer) as orders:
            return (await orders.get(f"/api/orders/{order_id}")).json()

    async def shown_ticket(self, ticket_id: str) -> dict:
        async with self.client("tickets", user()) as tickets:
            return (await tickets.get(f"/api/tickets/{ticket_id}")).json()

    async def payment(self, order_id: str) -> dict | None:
        return await self.mongo.payments.payments.find_one({"orderId": order_id})

    async def settled(self, buyer: str, order_id: str) -> dict:
        """Wait until the order is decided and its money settled; returns the order with
        its payment's final status as `money` (None: no payment was made)."""
        final: dict = {}

        async def done() -> bool:
            order = await self.shown_order(buyer, order_id)
            payment = await self.payment(order_id)
            money = payment["status"] if payment else None
            final.update(order, money=money)
            if order["status"] == "complete":
                return money == "captured"
            if order["status"] == "cancelled":
                return money in (None, "voided", "refunded")
            return False

        await eventually(done, within=60)
        return final

    async def audit_clean(self) -> None:
        """The auditor finds nothing, with no margin: everything is settled; and once
        every listener has caught up, the services' states hold every invariant
        (`chaos.invariants`: orders, tickets, the replica and the money agree)."""
        nc = await nats.connect(self.nats_url)
        js = nc.jetstream()
        try:
            report = await audit(js, margin=timedelta(0))
            assert report.clean, report.text()
            assert report.orders > 0

            async def drained() -> bool:
                return not await invariants.consumer_violations(js)

            await eventually(drained, within=60)
            found = await invariants.check(self.databases, js)
        finally:
            await nc.close()
        assert found == [], "\n".join(map(str, found))


@pytest.fixture(scope="module")
def market(mongo_server, nats_server, tmp_path_factory) -> Iterator[Market]:
    """The four services with a 2-minute order window, for a whole test file."""
    market = Market(mongo_server, nats_server, tmp_path_factory.mktemp("market"), 120).start()
    yield market
    market.stop()


def user() -> str:
    return str(ObjectId())


async def bought(market: Market, price: float = 10) -> tuple[str, str, dict]:
    """A seller's ticket, ordered by a buyer and known to payments."""
    seller, buyer = user(), user()
    ticket = await market.sell(seller, price)
    placed = await market.order(buyer, ticket["id"])
    assert placed.status_code == 201, placed.text
    await market.payable(placed.json()["id"])
    return seller, buyer, {**placed.json(), "ticketId": ticket["id"]}
