"""Sellers and buyers doing what the product does, through the services' HTTP APIs:
list and edit tickets, buy them and pay, cancel, let an order expire, sign out — so
every kind of event flows. With several processes of one service (two releases side
by side), each round goes through the next one in turn."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import httpx
from nats.js.client import JetStreamContext

from contract.fleet import Fleet
from testkit.streams import stream_messages

PAID, CANCELLED, EXPIRED = "paid", "cancelled", "expired"
ENDINGS = (PAID, CANCELLED, EXPIRED)


@dataclass
class Deal:
    order_id: str
    ticket_id: str
    ending: str
    orders_url: str
    buyer: httpx.Cookies


async def _signed_up(client: httpx.AsyncClient, auth: str, email: str) -> httpx.Cookies:
    response = await client.post(
        f"{auth}/api/users/signup", json={"email": email, "password": "secret1"}
    )
    assert response.status_code == 201, response.text
    return response.cookies


async def _placed(
    client: httpx.AsyncClient, orders: str, buyer: httpx.Cookies, ticket_id: str
) -> str:
    """An order, once this orders process has heard of the ticket (404 until then)."""
    for _ in range(300):
        response = await client.post(
            f"{orders}/api/orders", json={"ticketId": ticket_id}, cookies=buyer
        )
        if response.status_code == 201:
            return str(response.json()["id"])
        assert response.status_code == 404, response.text
        await asyncio.sleep(0.05)
    raise AssertionError(f"orders never heard of ticket {ticket_id}")


async def trade(fleet: Fleet, rounds: int, tag: str) -> list[Deal]:
    """`rounds` tickets listed and bought (and as many spares listed and edited); each
    order paid, cancelled by its buyer or left to expire, in turn."""
    auth = fleet.url("auth")
    tickets = fleet.url("tickets")
    orders = itertools.cycle([p.url for p in fleet.processes["orders"]])
    payments = itertools.cycle([p.url for p in fleet.processes["payments"]])
    deals = []
    async with httpx.AsyncClient(timeout=30) as client:
        seller = await _signed_up(client, auth, f"seller-{tag}@test.com")
        buyers = [await _signed_up(client, auth, f"buyer-{tag}-{n}@test.com") for n in range(3)]
        for n in range(rounds):
            ticket_id = await _listed(client, tickets, seller, f"Show {n}", 10 + n)
            # an edit each round, of a ticket nobody buys (one bought right after an
            # edit may be ordered at the old price: tickets refuses it, as it should)
            spare = await _listed(client, tickets, seller, f"Spare {n}", 5)
            edited = await client.put(
                f"{tickets}/api/tickets/{spare}",
                json={"title": f"Spare {n}", "price": 6},
                cookies=seller,
            )
            assert edited.status_code == 200, edited.text
            buyer, ending, orders_url = buyers[n % 3], ENDINGS[n // 3 % 3], next(orders)
            order_id = await _placed(client, orders_url, buyer, ticket_id)
            if ending == PAID:
                await _pay(client, next(payments), buyer, order_id)
            elif ending == CANCELLED:
                gone = await client.delete(f"{orders_url}/api/orders/{order_id}", cookies=buyer)
                assert gone.status_code == 204, gone.text
            deals.append(Deal(order_id, ticket_id, ending, orders_url, buyer))
    return deals


async def sign_out(fleet: Fleet, deals: list[Deal]) -> None:
    """Every buyer signs out (`session.revoked`)."""
    async with httpx.AsyncClient(timeout=30) as client:
        for buyer in {id(d.buyer): d.buyer for d in deals}.values():
            signed_out = await client.post(f"{fleet.url('auth')}/api/users/signout", cookies=buyer)
            assert signed_out.status_code == 200, signed_out.text


async def _listed(
    client: httpx.AsyncClient, tickets: str, seller: httpx.Cookies, title: str, price: int
) -> str:
    listed = await client.post(
        f"{tickets}/api/tickets", json={"title": title, "price": price}, cookies=seller
    )
    assert listed.status_code == 201, listed.text
    return str(listed.json()["id"])


async def _pay(
    client: httpx.AsyncClient, payments: str, buyer: httpx.Cookies, order_id: str
) -> None:
    """Paid with the test card, once payments has heard of the order."""
    for _ in range(300):
        paid = await client.post(
            f"{payments}/api/payments",
            json={"orderId": order_id, "token": "tok_visa"},
            cookies=buyer,
        )
        if paid.status_code == 201:
            return
        assert paid.status_code == 404, paid.text
        await asyncio.sleep(0.05)
    raise AssertionError(f"payments never heard of order {order_id}")


async def race(fleet: Fleet, js: JetStreamContext, tag: str, tries: int = 40) -> set[str]:
    """The two races the product settles with events of their own, run until each has
    gone that way once (or `tries` times): a buyer paying as they cancel (the cancel
    first, the authorization is voided: `payment.voided`), and a seller changing the
    price as a buyer orders (the order at the old price: `ticket.refused`). Returns the
    subjects they made."""
    auth, tickets = fleet.url("auth"), fleet.url("tickets")
    orders, payments = fleet.url("orders", -1), fleet.url("payments", -1)

    async def made(subject: str) -> bool:
        return bool(await stream_messages(js, subject))

    async with httpx.AsyncClient(timeout=30) as client:
        seller = await _signed_up(client, auth, f"race-seller-{tag}@test.com")
        buyer = await _signed_up(client, auth, f"race-buyer-{tag}@test.com")
        for n in range(tries):
            if await made("payment.voided"):
                break
            ticket_id = await _listed(client, tickets, seller, f"Race {n}", 15)
            order_id = await _placed(client, orders, buyer, ticket_id)
            await asyncio.sleep(0.3)  # payments hears of the order
            await asyncio.gather(
                client.post(
                    f"{payments}/api/payments",
                    json={"orderId": order_id, "token": "tok_visa"},
                    cookies=buyer,
                ),
                client.delete(f"{orders}/api/orders/{order_id}", cookies=buyer),
            )
            await asyncio.sleep(0.5)  # decided
        for n in range(tries):
            if await made("ticket.refused"):
                break
            ticket_id = await _listed(client, tickets, seller, f"Edited {n}", 15)
            first = await _placed(client, orders, buyer, ticket_id)  # orders knows the ticket
            await client.delete(f"{orders}/api/orders/{first}", cookies=buyer)
            await asyncio.sleep(0.3)  # released
            _, placed = await asyncio.gather(
                client.put(
                    f"{tickets}/api/tickets/{ticket_id}",
                    json={"title": f"Edited {n}", "price": 16},
                    cookies=seller,
                ),
                client.post(f"{orders}/api/orders", json={"ticketId": ticket_id}, cookies=buyer),
            )
            await asyncio.sleep(0.5)  # decided
            if placed.status_code == 201:
                await client.delete(f"{orders}/api/orders/{placed.json()['id']}", cookies=buyer)
    return {subject for subject in ("payment.voided", "ticket.refused") if await made(subject)}
