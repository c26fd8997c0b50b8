"""The orders routes on the REAL MongoDB-wire server, events recorded by the fake (the
original suite's cases, plus ownership, validation, bad input and the buyers' race)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from pydantic import ValidationError

from orders.core.config import OrdersSettings
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import (
    ANY_VALID_BODY,
    NOT_TEXT,
    non_json_state_changes,
    not_refused_as_non_json,
    send_raw_json,
)

URL = "/api/orders"


def signed_in(user_id: str | None = None) -> dict[str, str]:
    return session_cookie(TEST_JWT_KEY, user_id=user_id or str(ObjectId()))


async def a_ticket(db, *, owner: str | None = None, price_cents: int = 2000) -> dict:
    """A ticket in the orders service's replica, as ticket.created puts it there."""
    ticket = {
        "_id": str(ObjectId()),
        "title": "Concert",
        "priceCents": price_cents,
        "userId": owner or str(ObjectId()),
        "version": 0,
    }
    await db.tickets.insert_one(ticket)
    return ticket


async def order(client, ticket: dict, cookies=None):
    return await client.post(URL, json={"ticketId": ticket["_id"]}, cookies=cookies or signed_in())


def errors(response) -> list[dict]:
    return response.json()["errors"]


# --- create ---------------------------------------------------------------------------


async def test_create_requires_sign_in(client, clean_db):
    ticket = await a_ticket(clean_db)
    response = await client.post(URL, json={"ticketId": ticket["_id"]})
    assert response.status_code == 401
    assert await clean_db.orders.count_documents({}) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"ticketId": ""}, {"ticketId": "nope"}, {"ticketId": {"$gt": ""}}, {"ticketId": 12}],
)
async def test_an_invalid_ticket_id_is_400_with_its_field(client, clean_db, body):
    response = await client.post(URL, json=body, cookies=signed_in())
    assert response.status_code == 400
    assert errors(response) == [{"message": "TicketId must be provided", "field": "ticketId"}]
    assert await clean_db.orders.count_documents({}) == 0


async def test_an_unknown_ticket_is_404(client):
    response = await client.post(URL, json={"ticketId": str(ObjectId())}, cookies=signed_in())
    assert response.status_code == 404
    assert errors(response) == [{"message": "Ticket not found"}]


async def test_you_cannot_buy_your_own_ticket(client, clean_db, recording_nats):
    owner = str(ObjectId())
    ticket = await a_ticket(clean_db, owner=owner)
    response = await order(client, ticket, signed_in(owner))
    assert response.status_code == 400
    assert errors(response) == [{"message": "You cannot buy your own ticket"}]
    assert recording_nats.published == []


async def test_ordering_reserves_the_ticket_and_publishes_order_created(
    client, clean_db, recording_nats
):
    ticket = await a_ticket(clean_db, price_cents=2050)
    buyer = str(ObjectId())
    before = datetime.now(UTC)
    response = await order(client, ticket, signed_in(buyer))
    assert response.status_code == 201
    body = response.json()
    expires = datetime.fromisoformat(body["expiresAt"])
    assert body["expiresAt"].endswith("Z")
    assert timedelta(seconds=899) < expires - before < timedelta(seconds=902)
    assert body == {
        "id": body["id"],
        "status": "created",
        "userId": buyer,
        "expiresAt": body["expiresAt"],
        "version": 0,
        "ticket": {"id": ticket["_id"], "title": "Concert", "price": 20.5, "version": 0},
    }
    [message] = recording_nats.published
    assert message.subject == "order.created"
    assert message.headers == {
        "Nats-Msg-Id": f"order.created:{body['id']}:0",
        "Ticketing-Schema": "order.created/1",
    }
    assert message.data == {
        "id": body["id"],
        "version": 0,
        "status": "created",
        "userId": buyer,
        "expiresAt": body["expiresAt"],
        "ticket": {"id": ticket["_id"], "price": 20.5},
    }


async def test_a_reserved_ticket_cannot_be_ordered_again(client, clean_db, recording_nats):
    ticket = await a_ticket(clean_db)
    assert (await order(client, ticket)).status_code == 201
    response = await order(client, ticket)
    assert response.status_code == 400
    assert errors(response) == [{"message": "Ticket is already reserved"}]
    assert await clean_db.orders.count_documents({}) == 1
    assert len(recording_nats.published) == 1


async def test_twelve_buyers_at_the_same_instant_one_gets_the_ticket(
    client, clean_db, recording_nats
):
    ticket = await a_ticket(clean_db)
    responses = await asyncio.gather(*(order(client, ticket) for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [400] * 11
    assert all(
        errors(r) == [{"message": "Ticket is already reserved"}]
        for r in responses
        if r.status_code == 400
    )
    assert await clean_db.orders.count_documents({}) == 1
    assert [m.subject for m in recording_nats.published] == ["order.created"]


async def test_a_sold_ticket_says_so(client, clean_db):
    ticket = await a_ticket(clean_db)
    created = (await order(client, ticket)).json()
    await clean_db.orders.update_one(
        {"_id": ObjectId(created["id"])}, {"$set": {"status": "complete", "unpaidSlot": None}}
    )
    response = await order(client, ticket)
    assert response.status_code == 400
    assert errors(response) == [{"message": "Ticket is sold"}]


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def test_a_repeated_request_gets_the_order_it_placed_not_a_second(
    client, clean_db, recording_nats
):
    """A buyer whose answer was lost sends the same request again (same Idempotency-Key):
    the order the first placed, 200 and marked replayed; one order, one event. Without a
    key, or with a new one, a repeat is a new request as before."""
    ticket, me = await a_ticket(clean_db), signed_in()
    first = await client.post(
        URL, json={"ticketId": ticket["_id"]}, cookies=me, headers=keyed("k1")
    )
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = await client.post(
        URL, json={"ticketId": ticket["_id"]}, cookies=me, headers=keyed("k1")
    )
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert (await order(client, ticket, me)).status_code == 400  # no key: a new request
    fresh = await client.post(
        URL, json={"ticketId": ticket["_id"]}, cookies=me, headers=keyed("k2")
    )
    assert errors(fresh) == [{"message": "Ticket is already reserved"}]
    assert await clean_db.orders.count_documents({}) == 1
    assert len(recording_nats.payloads("order.created")) == 1
    # replayed as it is now: cancelled since
    assert (await client.delete(f"{URL}/{first.json()['id']}", cookies=me)).status_code == 204
    later = await client.post(
        URL, json={"ticketId": ticket["_id"]}, cookies=me, headers=keyed("k1")
    )
    assert (later.status_code, later.json()["status"]) == (200, "cancelled")
    assert await clean_db.orders.count_documents({}) == 1


async def test_twelve_simultaneous_copies_of_one_request_place_one_order(
    client, clean_db, recording_nats
):
    """The same request sent at once over many connections (a retry racing the original,
    on the real database): every copy answers with the one order placed."""
    ticket, me = await a_ticket(clean_db), signed_in()
    body = {"ticketId": ticket["_id"]}
    responses = await asyncio.gather(
        *(client.post(URL, json=body, cookies=me, headers=keyed("same")) for _ in range(12))
    )
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await clean_db.orders.count_documents({}) == 1
    assert len(recording_nats.payloads("order.created")) == 1


async def test_a_key_is_one_users_and_one_tickets(client, clean_db):
    """Another user's same key is another request; the same key for another ticket is a
    client's mistake, said as such (nothing placed)."""
    first_ticket, second_ticket = await a_ticket(clean_db), await a_ticket(clean_db)
    me = signed_in()
    placed = await client.post(
        URL, json={"ticketId": first_ticket["_id"]}, cookies=me, headers=keyed("mine")
    )
    assert placed.status_code == 201
    other = await client.post(
        URL, json={"ticketId": second_ticket["_id"]}, cookies=signed_in(), headers=keyed("mine")
    )
    assert other.status_code == 201
    misuse = await client.post(
        URL, json={"ticketId": second_ticket["_id"]}, cookies=me, headers=keyed("mine")
    )
    assert misuse.status_code == 400
    assert errors(misuse) == [
        {
            "message": "This Idempotency-Key was used for another ticket; send a new key",
            "field": "Idempotency-Key",
        }
    ]
    assert await clean_db.orders.count_documents({}) == 2


@pytest.mark.parametrize("key", ["", "x" * 201, "caf\u00e9", "tab\there"])
async def test_a_malformed_idempotency_key_is_400_naming_it(client, clean_db, key):
    ticket = await a_ticket(clean_db)
    response = await client.post(
        URL,
        json={"ticketId": ticket["_id"]},
        cookies=signed_in(),
        headers={"Idempotency-Key": key.encode().decode("unicode_escape").encode("latin-1")},
    )
    assert response.status_code == 400
    assert errors(response) == [
        {
            "message": "Idempotency-Key must be 1 to 200 printable ASCII characters",
            "field": "Idempotency-Key",
        }
    ]
    assert await clean_db.orders.count_documents({}) == 0


async def test_ten_simultaneous_orders_by_one_user_reserve_at_most_three(
    client, clean_db, recording_nats
):
    """No hoarding: MAX_UNPAID_ORDERS_PER_USER (3), race-free on the real database."""
    me = signed_in()
    tickets = [await a_ticket(clean_db) for _ in range(10)]
    responses = await asyncio.gather(*(order(client, t, me) for t in tickets))
    assert sorted(r.status_code for r in responses) == [201] * 3 + [400] * 7
    refused = [errors(r) for r in responses if r.status_code == 400]
    assert (
        refused == [[{"message": "You already hold 3 unpaid orders: pay or cancel one first"}]] * 7
    )
    assert await clean_db.orders.count_documents({}) == 3
    assert len(recording_nats.payloads("order.created")) == 3
    # the cap frees when an order is cancelled, completed or expires
    placed = [r.json() for r in responses if r.status_code == 201]
    spare = [t for t in tickets if t["_id"] not in {o["ticket"]["id"] for o in placed}]
    assert (await client.delete(f"{URL}/{placed[0]['id']}", cookies=me)).status_code == 204
    assert (await order(client, spare[0], me)).status_code == 201
    assert (await order(client, spare[1], me)).status_code == 400
    await clean_db.orders.update_one(  # paid (as orders completes it)
        {"_id": ObjectId(placed[1]["id"])}, {"$set": {"status": "complete", "unpaidSlot": None}}
    )
    assert (await order(client, spare[1], me)).status_code == 201
    other_buyer = signed_in()  # the cap is per user
    assert (await order(client, spare[2], other_buyer)).status_code == 201


async def test_a_cancelled_order_frees_the_ticket_for_another_buyer(client, clean_db):
    ticket = await a_ticket(clean_db)
    first, first_buyer = None, signed_in()
    first = (await order(client, ticket, first_buyer)).json()
    assert (await client.delete(f"{URL}/{first['id']}", cookies=first_buyer)).status_code == 204
    assert (await order(client, ticket)).status_code == 201


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"ticketId": ', b"[]", b'"x"', b"x" * 200_000],
)
async def test_bad_bodies_are_refused_cleanly_and_nothing_is_stored(client, clean_db, raw):
    response = await client.post(
        URL, content=raw, headers={"content-type": "application/json"}, cookies=signed_in()
    )
    assert response.status_code in (400, 413)
    assert "errors" in response.json()
    assert await clean_db.orders.count_documents({}) == 0


# --- index / show ----------------------------------------------------------------------


async def test_index_lists_only_the_callers_orders_newest_first_with_tickets(client, clean_db):
    me, someone = signed_in(), signed_in()
    first = (await order(client, await a_ticket(clean_db), me)).json()
    await order(client, await a_ticket(clean_db), someone)
    second = (await order(client, await a_ticket(clean_db), me)).json()
    response = await client.get(URL, cookies=me)
    assert response.status_code == 200
    assert [o["id"] for o in response.json()] == [second["id"], first["id"]]
    assert response.json()[0]["ticket"]["title"] == "Concert"


async def test_index_and_show_require_sign_in(client, clean_db):
    created = (await order(client, await a_ticket(clean_db))).json()
    assert (await client.get(URL)).status_code == 401
    assert (await client.get(f"{URL}/{created['id']}")).status_code == 401


async def test_show_returns_your_order(client, clean_db):
    me = signed_in()
    created = (await order(client, await a_ticket(clean_db), me)).json()
    response = await client.get(f"{URL}/{created['id']}", cookies=me)
    assert response.status_code == 200
    assert response.json() == created


async def test_show_someone_elses_order_is_403(client, clean_db):
    created = (await order(client, await a_ticket(clean_db))).json()
    response = await client.get(f"{URL}/{created['id']}", cookies=signed_in())
    assert response.status_code == 403


@pytest.mark.parametrize("order_id", [str(ObjectId()), "not-an-id"])
async def test_show_unknown_or_malformed_is_404(client, order_id):
    response = await client.get(f"{URL}/{order_id}", cookies=signed_in())
    assert response.status_code == 404
    assert errors(response) == [{"message": "Order not found"}]


# --- cancel ----------------------------------------------------------------------------


async def test_cancel_marks_cancelled_and_publishes_order_cancelled_once(
    client, clean_db, recording_nats
):
    me = signed_in()
    ticket = await a_ticket(clean_db)
    created = (await order(client, ticket, me)).json()
    assert (await client.delete(f"{URL}/{created['id']}", cookies=me)).status_code == 204
    shown = (await client.get(f"{URL}/{created['id']}", cookies=me)).json()
    assert shown["status"] == "cancelled" and shown["version"] == 1
    # again: still 204, nothing new published
    assert (await client.delete(f"{URL}/{created['id']}", cookies=me)).status_code == 204
    cancelled = recording_nats.payloads("order.cancelled")
    assert cancelled == [{"id": created["id"], "version": 1, "ticket": {"id": ticket["_id"]}}]
    assert recording_nats.published[-1].headers == {
        "Nats-Msg-Id": f"order.cancelled:{created['id']}:1",
        "Ticketing-Schema": "order.cancelled/2",  # no reason: the buyer cancelled it
    }


async def test_cancel_someone_elses_order_is_403_and_unknown_is_404(client, clean_db):
    created = (await order(client, await a_ticket(clean_db))).json()
    assert (await client.delete(f"{URL}/{created['id']}", cookies=signed_in())).status_code == 403
    assert (await client.delete(f"{URL}/{ObjectId()}", cookies=signed_in())).status_code == 404
    assert (await client.delete(f"{URL}/{created['id']}")).status_code == 401


async def test_a_paid_order_cannot_be_cancelled(client, clean_db, recording_nats):
    me = signed_in()
    created = (await order(client, await a_ticket(clean_db), me)).json()
    await clean_db.orders.update_one(
        {"_id": ObjectId(created["id"])}, {"$set": {"status": "complete"}}
    )
    response = await client.delete(f"{URL}/{created['id']}", cookies=me)
    assert response.status_code == 400
    assert errors(response) == [{"message": "Cannot cancel a paid order"}]
    assert recording_nats.payloads("order.cancelled") == []


async def test_simultaneous_cancels_publish_one_cancellation(client, clean_db, recording_nats):
    me = signed_in()
    created = (await order(client, await a_ticket(clean_db), me)).json()
    responses = await asyncio.gather(
        *(client.delete(f"{URL}/{created['id']}", cookies=me) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {204}
    assert len(recording_nats.payloads("order.cancelled")) == 1


async def test_a_cross_site_form_cannot_change_anything(client, clean_db):
    """The CSRF guard: a valid body declared as a form or plain text → 415, not stored."""
    ticket = await a_ticket(clean_db)
    await clean_db.tickets.delete_one({"_id": ticket["_id"]})  # the body's ticketId names it:
    await clean_db.tickets.insert_one({**ticket, "_id": ANY_VALID_BODY["ticketId"]})  # valid
    responses = await non_json_state_changes(client, signed_in())
    assert len(responses) == 6  # POST /api/orders, DELETE /api/orders/{id}, 3 types each
    assert not_refused_as_non_json(responses) == {}
    assert await clean_db.orders.count_documents({}) == 0


def test_an_orders_expiry_schedule_stays_on_the_stream_until_it_is_due():
    """The expiration service schedules each order's expiry as a stream message."""
    common = {"mongo_uri": "mongodb://x", "jwt_key": TEST_JWT_KEY, "nats_url": "nats://x"}
    with pytest.raises(ValidationError, match="ORDER_EXPIRATION_SECONDS"):
        OrdersSettings(**common, order_expiration_seconds=7200, stream_max_age_seconds=3600)
    assert OrdersSettings(**common).order_expiration_seconds == 900


async def test_a_ticket_id_that_is_not_text_is_400_naming_it(client, clean_db):
    body = f'{{"ticketId": "{NOT_TEXT}"}}'
    response = await send_raw_json(client, "POST", URL, body, cookies=signed_in())
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"message": "TicketId must be valid text", "field": "ticketId"}]
    }
