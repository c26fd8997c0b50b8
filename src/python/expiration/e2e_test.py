"""Expiration end to end, across processes: tickets, orders and expiration each run as a
service of their own on a REAL nats-server and MongoDB-wire server. Prints its figures
(pytest -s, or Pants' test output) for RELIABILITY.md."""

import asyncio
import json
import time
from collections import Counter
from datetime import datetime

import httpx
import pytest
from bson import ObjectId

from harness.servers import ServiceProcess
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.streams import stream_messages
from testkit.waiting import eventually


class Services:
    def __init__(self, mongo_server, nats_server, workdir, expires_in: int) -> None:
        shared = {
            "MONGO_URI": mongo_server.uri,
            "JWT_KEY": TEST_JWT_KEY,
            "COOKIE_SECURE": "false",
            "NATS_URL": nats_server.url,
            "OUTBOX_INTERVAL": "0.2",
        }
        self.tickets = ServiceProcess("tickets", "tickets.main", shared, workdir / "tickets")
        self.orders = ServiceProcess(
            "orders",
            "orders.main",
            # one buyer holds every order of the burst (the anti-hoarding cap lifted)
            {
                **shared,
                "ORDER_EXPIRATION_SECONDS": str(expires_in),
                "MAX_UNPAID_ORDERS_PER_USER": "0",
            },
            workdir / "orders",
        )
        self.expiration = ServiceProcess(
            "expiration", "expiration.main", {"NATS_URL": nats_server.url}, workdir / "expiration"
        )
        self.all = [self.tickets, self.orders, self.expiration]

    def start(self) -> "Services":
        for process in self.all:
            process.start()
        return self

    def stop(self) -> None:
        for process in reversed(self.all):
            process.stop()


@pytest.fixture
def services(mongo_server, nats_server, nats_manager, tmp_path, request):
    running = Services(mongo_server, nats_server, tmp_path, request.param).start()
    yield running
    running.stop()


SELLER = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))
BUYER = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))


async def sell(tickets: httpx.AsyncClient, count: int) -> list[dict]:
    sem = asyncio.Semaphore(16)

    async def one(n: int) -> dict:
        async with sem:
            response = await tickets.post("/api/tickets", json={"title": f"t{n}", "price": 5})
            assert response.status_code == 201
            return response.json()

    return await asyncio.gather(*(one(n) for n in range(count)))


async def buy(orders: httpx.AsyncClient, tickets: list[dict]) -> list[dict]:
    """Order each ticket once orders has heard of it; returns the orders."""
    sem = asyncio.Semaphore(16)

    async def one(ticket: dict) -> dict:
        placed: list[httpx.Response] = []

        async def known() -> bool:
            async with sem:
                placed[:] = [await orders.post("/api/orders", json={"ticketId": ticket["id"]})]
            return placed[0].status_code != 404

        await eventually(known, within=60)
        assert placed[0].status_code == 201, placed[0].text
        return placed[0].json()

    return await asyncio.gather(*(one(t) for t in tickets))


def clients(services: Services) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=32)
    return (
        httpx.AsyncClient(base_url=services.tickets.url, cookies=SELLER, limits=limits, timeout=30),
        httpx.AsyncClient(base_url=services.orders.url, cookies=BUYER, limits=limits, timeout=30),
    )


async def all_cancelled(orders: httpx.AsyncClient, placed: list[dict]) -> bool:
    mine = {o["id"]: o["status"] for o in (await orders.get("/api/orders")).json()}
    return all(mine[o["id"]] == "cancelled" for o in placed)


async def all_free(tickets: httpx.AsyncClient, sold: list[dict]) -> bool:
    """Every ticket in `sold` is for sale again (listed), page by page."""
    for_sale: set[str] = set()
    params: dict[str, str | int] = {"limit": 200}
    while True:
        page = await tickets.get("/api/tickets", params=params)
        for_sale |= {t["id"] for t in page.json()}
        if "x-next-cursor" not in page.headers:
            return {t["id"] for t in sold} <= for_sale
        params["cursor"] = page.headers["x-next-cursor"]


async def once_each(js, subject: str, key: str) -> Counter[str]:
    return Counter(json.loads(m.data)[key] for m in await stream_messages(js, subject))


@pytest.mark.parametrize("services", [3], indirect=True)
async def test_an_unpaid_order_is_cancelled_and_its_ticket_released(services, nats_manager):
    tickets, orders = clients(services)
    async with tickets, orders:
        [ticket] = await sell(tickets, 1)
        [order] = await buy(orders, [ticket])
        await eventually(lambda: _ticket_is(tickets, ticket, orderId=order["id"], version=1))
        await eventually(lambda: all_cancelled(orders, [order]))
        await eventually(lambda: _ticket_is(tickets, ticket, orderId=None, version=2))
        assert ticket["id"] in [t["id"] for t in (await tickets.get("/api/tickets")).json()]
        shown = (await orders.get(f"/api/orders/{order['id']}")).json()
        assert shown["status"] == "cancelled" and shown["version"] == 1
    js = nats_manager.jetstream
    assert await once_each(js, "expiration.complete", "orderId") == {order["id"]: 1}
    assert await once_each(js, "order.cancelled", "id") == {order["id"]: 1}


@pytest.mark.parametrize("services", [8], indirect=True)
async def test_expirations_survive_a_restart_of_nats_and_of_the_expiration_service(
    services, nats_server, nats_manager
):
    js = nats_manager.jetstream
    tickets, orders = clients(services)
    async with tickets, orders:
        placed = await buy(orders, await sell(tickets, 5))
        due = max(_epoch(o["expiresAt"]) for o in placed)

        async def all_scheduled() -> bool:
            subjects = [m.subject for m in await stream_messages(js)]
            return sum(s.startswith("expiration.schedule.") for s in subjects) >= 5

        await eventually(all_scheduled)
        services.expiration.stop()  # the service that made the schedules is gone ...
        nats_server.restart()  # ... and NATS restarts (same store) before they are due
        await eventually(lambda: nats_manager.is_connected, within=60)
        assert time.time() < due, "the restart took longer than the expiry window"
        await eventually(lambda: all_cancelled(orders, placed), within=60)
        late = time.time() - due
    fired = await once_each(js, "expiration.complete", "orderId")
    cancelled = await once_each(js, "order.cancelled", "id")
    print(
        "\nRELIABILITY expiration-restart "
        + json.dumps(
            {
                "orders": len(placed),
                "fired": len(fired),
                "cancelled": len(cancelled),
                "seconds_after_due_all_cancelled": round(late, 2),
            }
        )
    )
    assert fired == {o["id"]: 1 for o in placed}
    assert cancelled == {o["id"]: 1 for o in placed}


@pytest.mark.parametrize("services", [25], indirect=True)
async def test_five_hundred_orders_expiring_together_are_each_cancelled_once(
    services, nats_manager
):
    count = 500
    js = nats_manager.jetstream
    tickets, orders = clients(services)
    async with tickets, orders:
        sold = await sell(tickets, count)
        started = time.monotonic()
        placed = await buy(orders, sold)
        placing = time.monotonic() - started
        await eventually(lambda: all_cancelled(orders, placed), within=180, every=0.5)
        cancelled_after = time.monotonic() - started
        await eventually(lambda: all_free(tickets, sold), within=180, every=0.5)
        drained = time.monotonic() - started
    fired = await once_each(js, "expiration.complete", "orderId")
    cancelled = await once_each(js, "order.cancelled", "id")
    print(
        "\nRELIABILITY expiration-burst "
        + json.dumps(
            {
                "orders": count,
                "expires_after_seconds": 25,
                "seconds_to_place": round(placing, 1),
                "seconds_until_all_cancelled": round(cancelled_after, 1),
                "seconds_until_all_released": round(drained, 1),
                "expired_once": sum(1 for n in fired.values() if n == 1),
                "cancelled_once": sum(1 for n in cancelled.values() if n == 1),
            }
        )
    )
    assert fired == {o["id"]: 1 for o in placed}
    assert cancelled == {o["id"]: 1 for o in placed}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def _ticket_is(tickets: httpx.AsyncClient, ticket: dict, **expected) -> bool:
    shown = (await tickets.get(f"/api/tickets/{ticket['id']}")).json()
    return all(shown.get(key) == value for key, value in expected.items())
