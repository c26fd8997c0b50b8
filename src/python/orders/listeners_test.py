"""The orders service's listeners on a REAL nats-server and MongoDB-wire server: the
ticket replica follows ticket.created / ticket.updated in version order; an expired
order is cancelled; an authorized payment completes its order — or, if the order is
over, late or at a price the ticket no longer has, cancels it (each once)."""

import json
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from common.events import (
    STREAM_NAME,
    ExpirationCompleteEvent,
    PaymentAuthorizedEvent,
    PaymentDisputedEvent,
    PaymentVoidedEvent,
    TicketCreatedEvent,
    TicketRefusedEvent,
    TicketUpdatedEvent,
    publish,
)
from orders.main import create_orders_app
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import app_client
from testkit.streams import stream_messages, stream_payloads
from testkit.waiting import eventually


@pytest.fixture
async def orders_app(make_settings, clean_db, nats_manager):
    app = create_orders_app(make_settings(), database=clean_db.name)
    async with app_client(app) as client:
        yield app, client


def ticket_event(model, version: int, **fields):
    values = {
        "id": TICKET_ID,
        "version": version,
        "title": f"v{version}",
        "price": 20,
        "userId": "u",
    }
    return model(**{**values, **fields})


TICKET_ID = str(ObjectId())


async def replica(db) -> dict | None:
    return await db.tickets.find_one({"_id": TICKET_ID})


async def test_ticket_created_is_copied_with_exact_cents(orders_app, clean_db, nats_manager):
    await publish(nats_manager.jetstream, ticket_event(TicketCreatedEvent, 0, price=19.99))
    await eventually(lambda: replica(clean_db))
    assert await replica(clean_db) == {
        "_id": TICKET_ID,
        "title": "v0",
        "priceCents": 1999,
        "userId": "u",
        "orderId": None,
        "version": 0,
    }


async def test_updates_apply_in_version_order_whatever_order_they_arrive_in(
    orders_app, clean_db, nats_manager
):
    js = nats_manager.jetstream
    # the update first: it waits for the creation (naked, redelivered), then applies
    await publish(js, ticket_event(TicketUpdatedEvent, 2, orderId="o1"))
    await publish(js, ticket_event(TicketUpdatedEvent, 1))
    await publish(js, ticket_event(TicketCreatedEvent, 0))
    await eventually(lambda: _version_is(clean_db, 2))
    assert (await replica(clean_db))["title"] == "v2"


async def test_a_duplicate_is_acked_and_changes_nothing(orders_app, clean_db, nats_manager):
    app, _ = orders_app
    js = nats_manager.jetstream
    await publish(js, ticket_event(TicketCreatedEvent, 0))
    await publish(js, ticket_event(TicketUpdatedEvent, 1, title="new"))
    await eventually(lambda: _version_is(clean_db, 1))
    stale = ticket_event(TicketUpdatedEvent, 1, title="stale copy")
    # a copy past the 2-minute dedupe window: a message id of its own
    await js.publish(stale.subject, stale.encode(), headers={"Nats-Msg-Id": "late-copy"})
    listener = next(x for x in app.state.context.running if x.event is TicketUpdatedEvent)

    async def settled() -> bool:
        info = await js.consumer_info(STREAM_NAME, listener.durable)
        return (
            info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq == 3
        )

    await eventually(settled)
    assert (await replica(clean_db))["title"] == "new"


async def _version_is(db, version: int) -> bool:
    doc = await replica(db)
    return doc is not None and doc["version"] == version


# --- expiration.complete and payment.authorized -----------------------------------------


async def an_order(client, db, status: str | None = None, reserved: bool = True) -> dict:
    """An order placed through the route (the ticket put in the replica first), and the
    ticket then reserved for it by tickets (the replica as ticket.updated leaves it)."""
    ticket = {
        "_id": str(ObjectId()),
        "title": "t",
        "priceCents": 500,
        "userId": "seller",
        "orderId": None,
        "version": 0,
    }
    await db.tickets.insert_one(ticket)
    buyer = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))
    response = await client.post("/api/orders", json={"ticketId": ticket["_id"]}, cookies=buyer)
    assert response.status_code == 201
    order = response.json()
    if reserved:
        await db.tickets.update_one(
            {"_id": ticket["_id"]}, {"$set": {"orderId": order["id"], "version": 1}}
        )
    if status is not None:
        await db.orders.update_one({"_id": ObjectId(order["id"])}, {"$set": {"status": status}})
    return order


def authorized(order: dict, cents: int = 500) -> PaymentAuthorizedEvent:
    return PaymentAuthorizedEvent(
        id=str(ObjectId()), orderId=order["id"], amountCents=cents, orderVersion=0
    )


async def order_now(db, order: dict) -> dict:
    return await db.orders.find_one({"_id": ObjectId(order["id"])})


async def settled(app, event_type, js, messages: int) -> bool:
    listener = next(x for x in app.state.context.running if x.event is event_type)
    info = await js.consumer_info(STREAM_NAME, listener.durable)
    return (
        info.num_pending == 0
        and info.num_ack_pending == 0
        and info.delivered.consumer_seq >= messages
    )


async def test_expiration_cancels_the_order_publishes_order_cancelled_and_acks(
    orders_app, clean_db, nats_manager
):
    app, client = orders_app
    js = nats_manager.jetstream
    order = await an_order(client, clean_db)
    await publish(js, ExpirationCompleteEvent(orderId=order["id"]))
    await eventually(lambda: _status(clean_db, order, "cancelled"))
    stored = await order_now(clean_db, order)
    assert stored["activeTicketId"] is None  # ticket let go
    assert stored["unpaidSlot"] is None  # and the buyer's unpaid-order slot
    await eventually(lambda: settled(app, ExpirationCompleteEvent, js, 1))
    [cancelled] = await stream_messages(js, "order.cancelled")
    assert json.loads(cancelled.data) == {  # version 2: it says why
        "id": order["id"],
        "version": 1,
        "ticket": {"id": order["ticket"]["id"]},
        "reason": "The order expired before it was paid",
    }
    assert cancelled.headers["Ticketing-Schema"] == "order.cancelled/2"
    # a second expiration for it (past the dedupe window) publishes nothing new
    again = ExpirationCompleteEvent(orderId=order["id"])
    await js.publish(again.subject, again.encode(), headers={"Nats-Msg-Id": "again"})
    await eventually(lambda: settled(app, ExpirationCompleteEvent, js, 2))
    assert len(await stream_payloads(js, "order.cancelled")) == 1


async def test_expiration_leaves_a_paid_order_alone(orders_app, clean_db, nats_manager):
    app, client = orders_app
    js = nats_manager.jetstream
    order = await an_order(client, clean_db, status="complete")
    await publish(js, ExpirationCompleteEvent(orderId=order["id"]))
    await eventually(lambda: settled(app, ExpirationCompleteEvent, js, 1))
    assert (await order_now(clean_db, order))["status"] == "complete"
    assert await stream_payloads(js, "order.cancelled") == []


async def test_an_authorized_payment_completes_the_order_once(orders_app, clean_db, nats_manager):
    app, client = orders_app
    js = nats_manager.jetstream
    order = await an_order(client, clean_db)
    paid = authorized(order)
    await publish(js, paid)
    await eventually(lambda: _status(clean_db, order, "complete"))
    await js.publish(paid.subject, paid.encode(), headers={"Nats-Msg-Id": "again"})
    await eventually(lambda: settled(app, PaymentAuthorizedEvent, js, 2))
    stored = await order_now(clean_db, order)
    assert (stored["status"], stored["version"], stored["unpaidSlot"]) == ("complete", 1, None)
    assert await stream_payloads(js, "order.completed") == [
        {"id": order["id"], "version": 1, "ticket": {"id": order["ticket"]["id"]}}
    ]
    buyer = session_cookie(TEST_JWT_KEY, user_id=order["userId"])
    cancel = await client.delete(f"/api/orders/{order['id']}", cookies=buyer)
    assert cancel.json() == {"errors": [{"message": "Cannot cancel a paid order"}]}


async def test_an_authorization_for_a_cancelled_order_changes_nothing(
    orders_app, clean_db, nats_manager
):
    """The buyer cancelled first: order.cancelled is on the stream, payments voids."""
    app, client = orders_app
    js = nats_manager.jetstream
    order = await an_order(client, clean_db)
    buyer = session_cookie(TEST_JWT_KEY, user_id=order["userId"])
    assert (await client.delete(f"/api/orders/{order['id']}", cookies=buyer)).status_code == 204
    await publish(js, authorized(order))
    await eventually(lambda: settled(app, PaymentAuthorizedEvent, js, 1))
    assert (await order_now(clean_db, order))["status"] == "cancelled"
    assert await stream_payloads(js, "order.completed") == []
    assert len(await stream_payloads(js, "order.cancelled")) == 1


async def test_an_authorization_after_the_expiry_cancels_the_order(
    orders_app, clean_db, nats_manager
):
    app, client = orders_app
    js = nats_manager.jetstream
    order = await an_order(client, clean_db)
    await clean_db.orders.update_one(
        {"_id": ObjectId(order["id"])}, {"$set": {"expiresAt": datetime.now(UTC)}}
    )
    await publish(js, authorized(order))
    await eventually(lambda: _status(clean_db, order, "cancelled"))
    shown = (await client.get(f"/api/orders/{order['id']}", cookies=buyer_of(order))).json()
    assert shown["reason"] == "The order expired before it was paid"
    assert await stream_payloads(js, "order.completed") == []
    await eventually(lambda: _on_stream(js, "order.cancelled", 1))


async def test_an_authorization_waits_for_tickets_to_reserve_the_ticket(
    orders_app, clean_db, nats_manager
):
    """Orders completes only an order tickets gave the ticket to: until ticket.updated
    says so, the authorization is held back (naked and redelivered), then applied."""
    app, client = orders_app
    js = nats_manager.jetstream
    await publish(js, ticket_event(TicketCreatedEvent, 0))
    await eventually(lambda: replica(clean_db))
    response = await client.post("/api/orders", json={"ticketId": TICKET_ID}, cookies=BUYER)
    order = response.json()
    await publish(js, authorized(order, cents=2000))
    listener = next(x for x in app.state.context.running if x.event is PaymentAuthorizedEvent)
    await eventually(lambda: listener.outcomes["ahead"] >= 2)
    assert (await order_now(clean_db, order))["status"] == "created"
    await publish(js, ticket_event(TicketUpdatedEvent, 1, orderId=order["id"]))
    await eventually(lambda: _status(clean_db, order, "complete"))


async def test_a_seller_price_edit_cancels_the_unpaid_order_placed_at_the_old_price(
    orders_app, clean_db, nats_manager
):
    """The seller's edit was acknowledged before tickets heard of the order: tickets
    does not reserve the ticket for it, and orders cancels it, saying why — also when
    its payment was authorized first."""
    app, client = orders_app
    js = nats_manager.jetstream
    await publish(js, ticket_event(TicketCreatedEvent, 0, price=10))
    await eventually(lambda: replica(clean_db))
    order = (await client.post("/api/orders", json={"ticketId": TICKET_ID}, cookies=BUYER)).json()
    await publish(js, authorized(order, cents=1000))
    await publish(js, ticket_event(TicketUpdatedEvent, 1, price=999))
    await eventually(lambda: _status(clean_db, order, "cancelled"))
    shown = (await client.get(f"/api/orders/{order['id']}", cookies=BUYER)).json()
    assert shown["reason"] == "The seller changed this ticket; order again to see the new price"
    await eventually(lambda: settled(app, PaymentAuthorizedEvent, js, 1))
    assert await stream_payloads(js, "order.completed") == []
    await eventually(lambda: _on_stream(js, "order.cancelled", 1))


async def test_a_ticket_tickets_refused_cancels_the_unpaid_order_at_once(
    orders_app, clean_db, nats_manager
):
    """The refusal the issue found: orders accepted an order at the old price and the
    replica's stale-price check had nothing to cancel yet (the edit came first); tickets
    refused to reserve the ticket. On ticket.refused the order is cancelled at once,
    saying why (its slot free, its ticket not held), once however often it comes; a
    complete order stays complete."""
    app, client = orders_app
    js = nats_manager.jetstream
    await publish(js, ticket_event(TicketCreatedEvent, 0, price=10))
    await eventually(lambda: replica(clean_db))
    order = (await client.post("/api/orders", json={"ticketId": TICKET_ID}, cookies=BUYER)).json()
    refused = TicketRefusedEvent(id=TICKET_ID, orderId=order["id"], reason="price_changed")
    await publish(js, refused)
    await js.publish(refused.subject, refused.encode(), headers={"Nats-Msg-Id": "again"})
    await eventually(lambda: _status(clean_db, order, "cancelled"))
    shown = (await client.get(f"/api/orders/{order['id']}", cookies=BUYER)).json()
    assert shown["reason"] == "The seller changed this ticket; order again to see the new price"
    stored = await order_now(clean_db, order)
    assert stored["unpaidSlot"] is None and stored["activeTicketId"] is None
    await eventually(lambda: settled(app, TicketRefusedEvent, js, 2))
    assert len(await stream_payloads(js, "order.cancelled")) == 1
    done = await an_order(client, clean_db, status="complete")
    await publish(js, TicketRefusedEvent(id=TICKET_ID, orderId=done["id"], reason="price_changed"))
    await eventually(lambda: settled(app, TicketRefusedEvent, js, 3))
    assert (await order_now(clean_db, done))["status"] == "complete"


async def test_what_payments_did_with_the_money_is_shown_on_the_order(
    orders_app, clean_db, nats_manager
):
    app, client = orders_app
    order = await an_order(client, clean_db, status="cancelled")
    await publish(
        nats_manager.jetstream, PaymentVoidedEvent(id=str(ObjectId()), orderId=order["id"])
    )

    async def voided() -> bool:
        shown = await client.get(f"/api/orders/{order['id']}", cookies=buyer_of(order))
        return shown.json().get("payment") == "voided"

    await eventually(voided)
    await publish(  # the card holder disputes it later: the order says so
        nats_manager.jetstream,
        PaymentDisputedEvent(
            id=str(ObjectId()), orderId=order["id"], disputeId="dp_1", reason="fraudulent"
        ),
    )

    async def disputed() -> bool:
        shown = await client.get(f"/api/orders/{order['id']}", cookies=buyer_of(order))
        return shown.json().get("payment") == "disputed"

    await eventually(disputed)


BUYER = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))


def buyer_of(order: dict) -> dict[str, str]:
    return session_cookie(TEST_JWT_KEY, user_id=order["userId"])


async def _on_stream(js, subject: str, count: int) -> bool:
    return len(await stream_payloads(js, subject)) == count


async def _status(db, order: dict, status: str) -> bool:
    return (await order_now(db, order))["status"] == status
