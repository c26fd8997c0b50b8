"""The tickets routes on the REAL MongoDB-wire server, events recorded by the fake (the
original suite, plus validation, ordering of checks, pagination and concurrency)."""

import asyncio

import pytest
from bson import ObjectId

from common.outbox import PENDING
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import (
    NOT_TEXT,
    non_json_state_changes,
    not_refused_as_non_json,
    send_raw_json,
    stored_documents,
)

URL = "/api/tickets"
TICKET = {"title": "Concert", "price": 20}


def signed_in(user_id: str | None = None) -> dict[str, str]:
    return session_cookie(TEST_JWT_KEY, user_id=user_id)


async def create(client, cookies=None, **fields) -> dict:
    response = await client.post(URL, json={**TICKET, **fields}, cookies=cookies or signed_in())
    assert response.status_code == 201, response.text
    return response.json()


def errors(response) -> list[dict]:
    return response.json()["errors"]


# --- create ---------------------------------------------------------------------------


async def test_route_exists_and_requires_sign_in(client):
    response = await client.post(URL, json=TICKET)
    assert response.status_code == 401
    assert errors(response) == [{"message": "Not authorized"}]


async def test_signed_in_user_is_not_rejected_as_unauthorized(client):
    assert (await client.post(URL, json={}, cookies=signed_in())).status_code != 401


@pytest.mark.parametrize("title", ["", "   ", None, 123, ["a"], {"$gt": ""}])
async def test_invalid_title_is_400(client, title):
    response = await client.post(URL, json={"title": title, "price": 10}, cookies=signed_in())
    assert response.status_code == 400
    assert errors(response) == [{"message": "Title is required", "field": "title"}]


async def test_missing_title_is_400(client):
    response = await client.post(URL, json={"price": 10}, cookies=signed_in())
    assert errors(response) == [{"message": "Title is required", "field": "title"}]


async def test_overlong_title_is_400(client):
    response = await client.post(URL, json={"title": "x" * 201, "price": 10}, cookies=signed_in())
    assert errors(response) == [
        {"message": "Title must be at most 200 characters", "field": "title"}
    ]


@pytest.mark.parametrize("price", [-10, 0, -0.01, None, "10", "abc", True, [10], {"$gt": 0}])
async def test_invalid_price_is_400(client, price):
    response = await client.post(URL, json={"title": "t", "price": price}, cookies=signed_in())
    assert response.status_code == 400
    assert errors(response) == [{"message": "Price must be greater than 0", "field": "price"}]


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity"])
async def test_non_finite_price_is_400(client, raw):
    body = b'{"title": "t", "price": ' + raw + b"}"
    response = await client.post(
        URL, content=body, headers={"content-type": "application/json"}, cookies=signed_in()
    )
    assert response.status_code == 400
    assert errors(response)[0]["field"] == "price"


async def test_price_with_more_than_two_decimals_or_too_large_is_400(client):
    response = await client.post(URL, json={"title": "t", "price": 10.001}, cookies=signed_in())
    assert errors(response) == [
        {"message": "Price must have at most 2 decimal places", "field": "price"}
    ]
    response = await client.post(URL, json={"title": "t", "price": 1e12}, cookies=signed_in())
    assert errors(response) == [{"message": "Price must be at most 1000000", "field": "price"}]


async def test_non_json_and_oversized_bodies_are_rejected_cleanly(client, clean_db):
    response = await client.post(
        URL, content=b"title=x", headers={"content-type": "application/json"}, cookies=signed_in()
    )
    assert response.status_code == 400
    response = await client.post(
        URL, json={"title": "x" * 200_000, "price": 1}, cookies=signed_in()
    )
    assert response.status_code == 413
    assert await clean_db.tickets.count_documents({}) == 0


async def test_creates_a_ticket_with_valid_input(client, clean_db):
    user = str(ObjectId())
    body = await create(client, signed_in(user), title="  Concert  ", price=19.99)
    assert body == {
        "id": body["id"],
        "title": "Concert",
        "price": 19.99,
        "userId": user,
        "version": 0,
        "status": "available",
    }
    stored = await clean_db.tickets.find_one({"_id": ObjectId(body["id"])})
    assert stored["priceCents"] == 1999  # exact, no float error
    assert stored["title"] == "Concert"


async def test_whole_prices_come_back_as_integers_like_the_original(client):
    assert (await create(client, price=20))["price"] == 20
    assert (await create(client, price=20.5))["price"] == 20.5


async def test_create_publishes_ticket_created_with_exact_payload(client, recording_nats):
    user = str(ObjectId())
    body = await create(client, signed_in(user))
    [message] = recording_nats.published
    assert message.subject == "ticket.created"
    assert message.data == {
        "id": body["id"],
        "version": 0,
        "title": "Concert",
        "price": 20,
        "userId": user,
    }
    assert message.headers == {
        "Nats-Msg-Id": f"ticket.created:{body['id']}:0",
        "Ticketing-Schema": "ticket.created/1",
    }


# --- show / index ---------------------------------------------------------------------


async def test_show_404_for_unknown_and_malformed_ids(client):
    for ticket_id in (str(ObjectId()), "not-an-id", "123"):
        response = await client.get(f"{URL}/{ticket_id}")
        assert response.status_code == 404
        assert errors(response) == [{"message": "Ticket not found"}]


async def test_show_returns_the_ticket(client):
    created = await create(client)
    response = await client.get(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


async def test_show_never_reveals_unsent_events_and_names_the_reserving_order(client, clean_db):
    created = await create(client)
    await clean_db.tickets.update_one(
        {"_id": ObjectId(created["id"])},
        {
            "$set": {"orderId": "o1"},
            "$push": {PENDING: {"id": "e1", "data": "{}", "w": "x", "n": 0}},
        },
    )
    response = await client.get(f"{URL}/{created['id']}")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {**created, "orderId": "o1", "status": "reserved"}


async def test_index_lists_unreserved_tickets_newest_first(client, clean_db):
    ids = [(await create(client, title=f"t{n}"))["id"] for n in range(3)]
    await clean_db.tickets.update_one({"_id": ObjectId(ids[1])}, {"$set": {"orderId": "o1"}})
    response = await client.get(URL)
    assert response.status_code == 200
    assert [t["id"] for t in response.json()] == [ids[2], ids[0]]
    assert "x-next-cursor" not in response.headers


async def test_index_paginates_with_limit_and_cursor(client):
    ids = [(await create(client, title=f"t{n}"))["id"] for n in range(5)]
    newest_first = ids[::-1]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get(URL, params=params)
        page = [t["id"] for t in response.json()]
        assert len(page) <= 2
        seen += page
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert seen == newest_first


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"cursor": "bad"}]
)
async def test_index_rejects_bad_paging_parameters(client, params):
    response = await client.get(URL, params=params)
    assert response.status_code == 400
    assert errors(response)[0]["field"] in ("limit", "cursor")


# --- update ---------------------------------------------------------------------------


async def test_update_404_if_ticket_does_not_exist(client):
    response = await client.put(f"{URL}/{ObjectId()}", json=TICKET, cookies=signed_in())
    assert response.status_code == 404


async def test_update_401_if_not_signed_in(client):
    created = await create(client)
    assert (await client.put(f"{URL}/{created['id']}", json=TICKET)).status_code == 401


async def test_update_403_if_not_the_owner(client):
    created = await create(client)
    response = await client.put(
        f"{URL}/{created['id']}", json={"title": "Mine now", "price": 1}, cookies=signed_in()
    )
    assert response.status_code == 403
    assert (await client.get(f"{URL}/{created['id']}")).json()["title"] == "Concert"


async def test_update_400_on_invalid_title_or_price(client):
    owner = signed_in()
    created = await create(client, owner)
    for body in ({"title": "", "price": 20}, {"title": "ok", "price": -10}, {}):
        response = await client.put(f"{URL}/{created['id']}", json=body, cookies=owner)
        assert response.status_code == 400


async def test_update_with_valid_input_bumps_version_and_publishes(client, recording_nats):
    owner_id = str(ObjectId())
    created = await create(client, signed_in(owner_id))
    response = await client.put(
        f"{URL}/{created['id']}",
        json={"title": "New title", "price": 100},
        cookies=signed_in(owner_id),
    )
    assert response.status_code == 200
    assert response.json() == {**created, "title": "New title", "price": 100, "version": 1}
    assert (await client.get(f"{URL}/{created['id']}")).json()["version"] == 1
    updated = recording_nats.payloads("ticket.updated")
    assert updated == [
        {"id": created["id"], "version": 1, "title": "New title", "price": 100, "userId": owner_id}
    ]
    assert (
        recording_nats.published[-1].headers["Nats-Msg-Id"] == f"ticket.updated:{created['id']}:1"
    )


async def test_update_rejects_a_reserved_ticket(client, clean_db, recording_nats):
    owner = signed_in()
    created = await create(client, owner)
    await clean_db.tickets.update_one({"_id": ObjectId(created["id"])}, {"$set": {"orderId": "o1"}})
    response = await client.put(f"{URL}/{created['id']}", json=TICKET, cookies=owner)
    assert response.status_code == 400
    assert errors(response) == [{"message": "Cannot edit a reserved ticket"}]
    assert recording_nats.payloads("ticket.updated") == []


async def test_update_checks_in_the_documented_order(client, clean_db):
    created = await create(client)
    ticket_url = f"{URL}/{created['id']}"
    # 401 before 400: not signed in AND invalid body
    assert (await client.put(ticket_url, json={"price": -1})).status_code == 401
    # 400 before 404: invalid body on a missing ticket
    assert (
        await client.put(f"{URL}/{ObjectId()}", json={"price": -1}, cookies=signed_in())
    ).status_code == 400
    # 400 reserved before 403 not owner
    await clean_db.tickets.update_one({"_id": ObjectId(created["id"])}, {"$set": {"orderId": "o1"}})
    response = await client.put(ticket_url, json=TICKET, cookies=signed_in())
    assert errors(response) == [{"message": "Cannot edit a reserved ticket"}]


async def test_concurrent_updates_never_lose_one_silently(client, recording_nats):
    owner_id = str(ObjectId())
    created = await create(client, signed_in(owner_id))
    responses = await asyncio.gather(
        *(
            client.put(
                f"{URL}/{created['id']}",
                json={"title": f"edit {n}", "price": 10 + n},
                cookies=signed_in(owner_id),
            )
            for n in range(6)
        )
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}
    winners = [r.json() for r in responses if r.status_code == 200]
    assert winners
    for r in responses:
        if r.status_code == 409:
            assert errors(r)[0]["message"].startswith("The resource was changed by another request")
    final = (await client.get(f"{URL}/{created['id']}")).json()
    assert final["version"] == len(winners)  # every success is one version, none lost
    assert final["title"] == max(winners, key=lambda w: w["version"])["title"]
    versions = [p["version"] for p in recording_nats.payloads("ticket.updated")]
    assert sorted(versions) == list(range(1, len(winners) + 1))


@pytest.mark.parametrize(
    "title",
    [
        "Café ☕ — «front row»",
        "مقعد أمامي",
        "\U0001f3ab\U0001f3b8 x2",
        "e\u0301le\u0300ve",
        "a\u202eb",
    ],
)
async def test_unicode_titles_round_trip_exactly(client, title):
    created = await create(client, title=title)
    assert created["title"] == title
    assert (await client.get(f"{URL}/{created['id']}")).json()["title"] == title


async def test_deeply_nested_json_and_1_mb_bodies_are_refused_cleanly(client, clean_db):
    nested = '{"a":' * 10_000 + "1" + "}" * 10_000
    for body in (
        '{"title": ' + nested + ', "price": 5}',
        '{"title": "t", "price": ' + nested + "}",
    ):
        response = await client.post(
            URL, content=body, headers={"content-type": "application/json"}, cookies=signed_in()
        )
        assert response.status_code == 400
        assert "errors" in response.json()
    response = await client.post(
        URL, json={"title": "x" * 1_000_000, "price": 5}, cookies=signed_in()
    )
    assert response.status_code == 413
    assert await clean_db.tickets.count_documents({}) == 0


async def test_a_cross_site_form_cannot_change_anything(client, clean_db):
    """The CSRF guard: a valid body declared as a form or plain text → 415, not stored."""
    responses = await non_json_state_changes(client, signed_in())
    assert len(responses) == 6  # POST /api/tickets, PUT /api/tickets/{id}, 3 types each
    assert not_refused_as_non_json(responses) == {}
    assert await stored_documents(clean_db) == 0


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_title_that_is_not_text_is_400_naming_it_and_nothing_changes(
    client, clean_db, method
):
    """A lone surrogate (valid JSON, not valid text) was a 500 from the serializer."""
    ticket = await create(client)
    url = URL if method == "POST" else f"{URL}/{ticket['id']}"
    body = f'{{"title": "Concert {NOT_TEXT}", "price": 5}}'
    response = await send_raw_json(client, method, url, body, cookies=signed_in())
    assert response.status_code == 400
    assert errors(response) == [{"message": "Title must be valid text", "field": "title"}]
    assert await stored_documents(clean_db) == 1
    assert (await client.get(f"{URL}/{ticket['id']}")).json()["title"] == ticket["title"]
