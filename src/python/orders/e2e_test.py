"""Buying a ticket end to end, across processes: auth, tickets and orders each run as a
service of their own on a REAL nats-server and MongoDB-wire server, and learn about
each other only through the stream."""

import asyncio

import httpx
import pytest

from harness.servers import ServiceProcess
from testkit.auth import TEST_JWT_KEY
from testkit.waiting import eventually


@pytest.fixture
def services(mongo_server, nats_server, tmp_path):
    shared = {
        "MONGO_URI": mongo_server.uri,
        "JWT_KEY": TEST_JWT_KEY,
        "COOKIE_SECURE": "false",
        "ARGON2_MEMORY_KIB": "1024",  # tests exercise the logic, not the hashing cost
        "ARGON2_TIME_COST": "1",
    }
    eventing = {**shared, "NATS_URL": nats_server.url, "OUTBOX_INTERVAL": "0.2"}
    started = [
        ServiceProcess("auth", "auth.main", eventing, tmp_path / "auth").start(),
        ServiceProcess("tickets", "tickets.main", eventing, tmp_path / "tickets").start(),
        ServiceProcess("orders", "orders.main", eventing, tmp_path / "orders").start(),
    ]
    yield {process.name: process.url for process in started}  # type: ignore[attr-defined]
    for process in started:
        process.stop()


async def signed_up(auth_url: str, email: str) -> httpx.Cookies:
    async with httpx.AsyncClient(base_url=auth_url) as client:
        response = await client.post(
            "/api/users/signup", json={"email": email, "password": "secret"}
        )
        assert response.status_code == 201, response.text
        return client.cookies


async def order_when_known(orders: httpx.AsyncClient, ticket_id: str) -> httpx.Response:
    """POST /api/orders once the orders service has heard of the ticket (404 until then)."""
    result: list[httpx.Response] = []

    async def known() -> bool:
        response = await orders.post("/api/orders", json={"ticketId": ticket_id})
        result[:] = [response]
        return response.status_code != 404

    await eventually(known)
    return result[0]


async def test_sell_buy_cancel_and_buy_again_across_services(services):
    seller = await signed_up(services["auth"], "seller@test.com")
    buyer = await signed_up(services["auth"], "buyer@test.com")
    other = await signed_up(services["auth"], "other@test.com")
    tickets = httpx.AsyncClient(base_url=services["tickets"], cookies=seller)
    as_buyer = httpx.AsyncClient(base_url=services["orders"], cookies=buyer)
    as_other = httpx.AsyncClient(base_url=services["orders"], cookies=other)
    async with tickets, as_buyer, as_other:
        ticket = (await tickets.post("/api/tickets", json={"title": "Gig", "price": 25})).json()

        async def ticket_now() -> dict:
            return (await tickets.get(f"/api/tickets/{ticket['id']}")).json()

        placed = await order_when_known(as_buyer, ticket["id"])
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["ticket"] == {"id": ticket["id"], "title": "Gig", "price": 25, "version": 0}

        # tickets heard order.created: reserved, gone from the list, not editable
        await eventually(lambda: _is(ticket_now(), orderId=order["id"], version=1))
        assert ticket["id"] not in [t["id"] for t in (await tickets.get("/api/tickets")).json()]
        edit = await tickets.put(f"/api/tickets/{ticket['id']}", json={"title": "x", "price": 1})
        assert edit.status_code == 400
        # and orders refuses a second buyer
        second = await as_other.post("/api/orders", json={"ticketId": ticket["id"]})
        assert second.json() == {"errors": [{"message": "Ticket is already reserved"}]}

        assert (await as_buyer.delete(f"/api/orders/{order['id']}")).status_code == 204
        await eventually(lambda: _is(ticket_now(), orderId=None, version=2))
        assert ticket["id"] in [t["id"] for t in (await tickets.get("/api/tickets")).json()]

        again = await as_other.post("/api/orders", json={"ticketId": ticket["id"]})
        assert again.status_code == 201, again.text
        # orders' replica followed the ticket's versions (1: reserved, 2: released)
        assert again.json()["ticket"]["version"] == 2
        await eventually(lambda: _is(ticket_now(), orderId=again.json()["id"], version=3))
        mine = (await as_buyer.get("/api/orders")).json()
        assert [(o["id"], o["status"]) for o in mine] == [(order["id"], "cancelled")]


async def test_twelve_buyers_across_the_network_one_gets_it(services):
    seller = await signed_up(services["auth"], "seller2@test.com")
    buyers = [await signed_up(services["auth"], f"b{n}@test.com") for n in range(12)]
    async with httpx.AsyncClient(base_url=services["tickets"], cookies=seller) as tickets:
        ticket = (await tickets.post("/api/tickets", json={"title": "Gig", "price": 5})).json()
    clients = [httpx.AsyncClient(base_url=services["orders"], cookies=c) for c in buyers]
    try:
        # the seller's own try answers 400 (not 404) once orders knows the ticket
        async with httpx.AsyncClient(base_url=services["orders"], cookies=seller) as own:
            refused = await order_when_known(own, ticket["id"])
        assert refused.json() == {"errors": [{"message": "You cannot buy your own ticket"}]}
        responses = await asyncio.gather(
            *(c.post("/api/orders", json={"ticketId": ticket["id"]}) for c in clients)
        )
    finally:
        for client in clients:
            await client.aclose()
    assert sorted(r.status_code for r in responses) == [201] + [400] * 11


async def _is(current, **expected) -> bool:
    ticket = await current
    return all(ticket.get(key) == value for key, value in expected.items())
