"""The tickets service's listeners on a REAL nats-server and MongoDB-wire server: an order
reserves its ticket and a cancellation releases it, a completed order sells it — each
with a ticket.updated, once — and an order placed at a price the seller has since
changed does not get the ticket."""

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from common.events import (
    STREAM_NAME,
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderCreatedEvent,
    publish,
)
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import app_client
from testkit.streams import stream_payloads
from testkit.waiting import eventually
from tickets.main import create_tickets_app

URL = "/api/tickets"


@pytest.fixture
async def client(make_settings, clean_db, nats_manager):
    app = create_tickets_app(make_settings(), database=clean_db.name)
    async with app_client(app) as c:
        yield c


async def sell(client) -> dict:
    cookies = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))
    response = await client.post(URL, json={"title": "Gig", "price": 10}, cookies=cookies)
    assert response.status_code == 201
    return response.json()


def created(ticket: dict, order_id: str) -> OrderCreatedEvent:
    return OrderCreatedEvent(
        id=order_id,
        version=0,
        status="created",
        userId="buyer",
        expiresAt=datetime.now(UTC) + timedelta(minutes=15),
        ticket={"id": ticket["id"], "price": ticket["price"]},
    )


def cancelled(ticket: dict, order_id: str) -> OrderCancelledEvent:
    return OrderCancelledEvent(id=order_id, version=1, ticket={"id": ticket["id"]})


async def shown(client, ticket: dict) -> dict:
    return (await client.get(f"{URL}/{ticket['id']}")).json()


async def updates(js) -> list[dict]:
    return await stream_payloads(js, "ticket.updated")


def as_event(ticket: dict, **changes) -> dict:
    """A ticket as the API shows it, as its ticket.updated payload carries it."""
    return {key: value for key, value in {**ticket, **changes}.items() if key != "status"}


async def published_versions(js, versions: list[int]) -> None:
    """Wait until ticket.updated for exactly these versions is on the stream (the write
    is visible a moment before its event is acked)."""

    async def done() -> bool:
        return [u["version"] for u in await updates(js)] == versions

    await eventually(done)


async def test_order_created_reserves_the_ticket_and_publishes_ticket_updated(client, nats_manager):
    ticket = await sell(client)
    await publish(nats_manager.jetstream, created(ticket, "o1"))
    await eventually(lambda: _has(client, ticket, orderId="o1", version=1))
    assert (await client.get(URL)).json() == []  # no longer for sale
    edit = await client.put(
        f"{URL}/{ticket['id']}",
        json={"title": "x", "price": 1},
        cookies=session_cookie(TEST_JWT_KEY, user_id=ticket["userId"]),
    )
    assert edit.status_code == 400
    await published_versions(nats_manager.jetstream, [1])
    assert await updates(nats_manager.jetstream) == [as_event(ticket, version=1, orderId="o1")]


async def test_order_cancelled_releases_it_and_publishes_ticket_updated(client, nats_manager):
    js = nats_manager.jetstream
    ticket = await sell(client)
    await publish(js, created(ticket, "o1"))
    await eventually(lambda: _has(client, ticket, orderId="o1", version=1))
    await publish(js, cancelled(ticket, "o1"))
    await eventually(lambda: _has(client, ticket, orderId=None, version=2))
    assert [t["id"] for t in (await client.get(URL)).json()] == [ticket["id"]]
    await published_versions(js, [1, 2])
    assert (await updates(js))[-1] == as_event(ticket, version=2)  # no orderId: free


async def test_a_completed_order_sells_the_ticket_for_good(client, nats_manager):
    js = nats_manager.jetstream
    ticket = await sell(client)
    await publish(js, created(ticket, "o1"))
    await eventually(lambda: _has(client, ticket, orderId="o1", version=1))
    await publish(js, OrderCompletedEvent(id="o1", version=1, ticket={"id": ticket["id"]}))
    await eventually(lambda: _has(client, ticket, status="sold", version=2))
    assert (await shown(client, ticket))["orderId"] == "o1"
    assert (await client.get(URL)).json() == []  # not for sale
    edit = await client.put(
        f"{URL}/{ticket['id']}",
        json={"title": "x", "price": 1},
        cookies=session_cookie(TEST_JWT_KEY, user_id=ticket["userId"]),
    )
    assert edit.json() == {"errors": [{"message": "Cannot edit a sold ticket"}]}
    await published_versions(js, [1, 2])


async def test_an_order_at_a_price_the_seller_changed_does_not_get_the_ticket(client, nats_manager):
    """The edit (10 → 999) was acknowledged before the order (placed at 10 on orders'
    older copy) reached tickets: the ticket stays free at 999, and tickets says so with
    one ticket.refused (orders cancels the order on it), even when the order.created
    comes again."""
    js = nats_manager.jetstream
    ticket = await sell(client)
    owner = session_cookie(TEST_JWT_KEY, user_id=ticket["userId"])
    edit = await client.put(
        f"{URL}/{ticket['id']}", json={"title": "Gig", "price": 999}, cookies=owner
    )
    assert edit.status_code == 200
    stale = created(ticket, "o1")  # ticket["price"] is still 10 here
    await publish(js, stale)
    # the same event again, past the stream's dedupe window (a message id of its own)
    await js.publish(stale.subject, stale.encode(), headers={"Nats-Msg-Id": "again"})
    await publish(js, created({**ticket, "price": 999}, "o2"))  # a later order, at 999
    await eventually(lambda: _has(client, ticket, orderId="o2", version=2))
    await published_versions(js, [1, 2])  # the edit, then o2's reservation: none for o1
    refusals = await stream_payloads(js, "ticket.refused")
    assert refusals == [{"id": ticket["id"], "orderId": "o1", "reason": "price_changed"}]


async def test_a_redelivered_order_event_changes_nothing(client, nats_manager):
    js = nats_manager.jetstream
    ticket = await sell(client)
    event = created(ticket, "o1")
    await publish(js, event)
    await eventually(lambda: _has(client, ticket, orderId="o1", version=1))
    # the same event again, past the stream's dedupe window (a message id of its own)
    await js.publish(event.subject, event.encode(), headers={"Nats-Msg-Id": "again"})
    await publish(js, cancelled(ticket, "o1"))
    await eventually(lambda: _has(client, ticket, orderId=None, version=2))
    await js.publish(
        "order.cancelled", cancelled(ticket, "o1").encode(), headers={"Nats-Msg-Id": "again2"}
    )
    await publish(js, created(ticket, "o2"))  # flows after the duplicates
    await eventually(lambda: _has(client, ticket, orderId="o2", version=3))
    await published_versions(js, [1, 2, 3])  # each once: the duplicates changed nothing


async def test_a_cancellation_handled_before_its_creation_leaves_the_ticket_free(
    client, nats_manager
):
    js = nats_manager.jetstream
    ticket = await sell(client)
    await publish(js, cancelled(ticket, "o1"))
    await publish(js, created(ticket, "o1"))
    await publish(js, created(ticket, "o2"))  # a later order still gets it
    await eventually(lambda: _has(client, ticket, orderId="o2"))
    await published_versions(js, [1])
    assert [u.get("orderId") for u in await updates(js)] == ["o2"]


async def test_a_new_order_waits_for_the_previous_ones_release(client, nats_manager):
    js = nats_manager.jetstream
    ticket = await sell(client)
    await publish(js, created(ticket, "o1"))
    await eventually(lambda: _has(client, ticket, orderId="o1"))
    await publish(js, created(ticket, "o2"))  # o1's cancellation is not handled yet
    await publish(js, cancelled(ticket, "o1"))
    await eventually(lambda: _has(client, ticket, orderId="o2", version=3))
    await published_versions(js, [1, 2, 3])
    assert [u.get("orderId") for u in await updates(js)] == ["o1", None, "o2"]


async def test_an_order_cancelled_before_its_creation_is_handled_while_another_holds_the_ticket(
    make_settings, clean_db, nats_manager
):
    """Found by the storm (seed 12): o1 lost a version race to the seller's edit, orders
    cancelled it (stale price), and o2 got the ticket before o1's order.created was
    retried. That retry is over — o1 was cancelled — not "ahead" of o2's release, which
    may never come: it is acked at once, not retried until it is poisoned."""
    js = nats_manager.jetstream
    app = create_tickets_app(make_settings(), database=clean_db.name)
    async with app_client(app) as client:
        ticket = await sell(client)
        await publish(js, created(ticket, "o2"))
        await eventually(lambda: _has(client, ticket, orderId="o2", version=1))
        listeners = {listener.event: listener for listener in app.state.context.running}

        async def handled(event: type) -> bool:
            info = await js.consumer_info(STREAM_NAME, listeners[event].durable)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await publish(js, cancelled(ticket, "o1"))
        # the cancellation is in (its consumer is another: without this wait the
        # creation may come first, and be "ahead" until it is)
        await eventually(lambda: handled(OrderCancelledEvent), within=10)
        await publish(js, created(ticket, "o1"))
        await eventually(lambda: handled(OrderCreatedEvent), within=10)
        assert listeners[OrderCreatedEvent].outcomes["ahead"] == 0
        assert await _has(client, ticket, orderId="o2", version=1)


async def test_two_replicas_share_the_order_consumers(make_settings, clean_db, nats_manager):
    js = nats_manager.jetstream
    first = create_tickets_app(make_settings(), database=clean_db.name)
    second = create_tickets_app(make_settings(), database=clean_db.name)
    async with app_client(first) as one, app_client(second):
        tickets = [await sell(one) for _ in range(10)]
        for n, ticket in enumerate(tickets):
            await publish(js, created(ticket, f"o{n}"))
        for n, ticket in enumerate(tickets):
            await eventually(lambda t=ticket, n=n: _has(one, t, orderId=f"o{n}", version=1))
        durable = first.state.context.running[0].durable
        assert durable == second.state.context.running[0].durable == "tickets-order-created"
        info = await js.consumer_info(STREAM_NAME, durable)
    # each order.created was delivered once in all, to one replica or the other
    assert info.delivered.consumer_seq == 10 and info.num_redelivered == 0
    await published_versions(js, [1] * 10)
    assert sorted(u["id"] for u in await updates(js)) == sorted(t["id"] for t in tickets)


async def _has(client, ticket: dict, **expected) -> bool:
    current = await shown(client, ticket)
    return all(current.get(key) == value for key, value in expected.items())


async def test_my_tickets_shows_each_state_and_until_when_a_buyer_holds_one(client, nats_manager):
    """`GET /api/tickets/mine`: listed, reserved (until the order expires), sold — and
    released again when the order is cancelled; nobody else's tickets."""
    js = nats_manager.jetstream
    seller = session_cookie(TEST_JWT_KEY, user_id="the-seller")
    mine = []
    for title in ("Listed", "Held", "Gone"):
        created_ = await client.post(URL, json={"title": title, "price": 10}, cookies=seller)
        mine.append(created_.json())
    await sell(client)  # someone else's
    listed, held, gone = mine
    order = created(held, "o-held")
    await publish(js, order)
    await publish(js, created(gone, "o-gone"))
    await eventually(lambda: _has(client, gone, orderId="o-gone"))
    await publish(js, OrderCompletedEvent(id="o-gone", version=1, ticket={"id": gone["id"]}))
    await eventually(lambda: _has(client, gone, status="sold"))
    await eventually(lambda: _has(client, held, orderId="o-held"))

    shown_ = (await client.get(f"{URL}/mine", cookies=seller)).json()
    assert [(t["title"], t["status"]) for t in shown_] == [
        ("Gone", "sold"), ("Held", "reserved"), ("Listed", "available")
    ]  # fmt: skip
    until = datetime.fromisoformat(shown_[1]["reservedUntil"].replace("Z", "+00:00"))
    assert abs((until - order.expiresAt).total_seconds()) < 0.01
    assert "reservedUntil" not in shown_[2]
    assert "reservedUntil" not in await shown(client, held)  # the seller's view only

    await publish(js, cancelled(held, "o-held"))
    await eventually(lambda: _has(client, held, orderId=None))
    again = (await client.get(f"{URL}/mine", cookies=seller)).json()
    assert again[1]["status"] == "available" and "reservedUntil" not in again[1]
    assert (await client.get(f"{URL}/mine")).status_code == 401
