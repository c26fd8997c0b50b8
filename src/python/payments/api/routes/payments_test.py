"""The payments route on the REAL MongoDB-wire server with the test provider, events
recorded by the fake (the original suite's cases, plus declines, double payments —
one after the other and simultaneous — and a crash between the charge and the save)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from payments import repository
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import (
    NOT_TEXT,
    non_json_state_changes,
    not_refused_as_non_json,
    send_raw_json,
    stored_documents,
)

URL = "/api/payments"


def signed_in(user_id: str) -> dict[str, str]:
    return session_cookie(TEST_JWT_KEY, user_id=user_id)


async def an_order(db, *, status="created", price_cents=2000, expires_in=900) -> dict:
    """An order in the payments service's replica, as order.created puts it there."""
    order = {
        "_id": str(ObjectId()),
        "userId": str(ObjectId()),
        "status": status,
        "priceCents": price_cents,
        "expiresAt": datetime.now(UTC) + timedelta(seconds=expires_in),
        "version": 0,
    }
    await db.orders.insert_one(order)
    return order


async def pay(client, order: dict, token: str = "tok_visa", user: str | None = None):
    return await client.post(
        URL,
        json={"orderId": order["_id"], "token": token},
        cookies=signed_in(user or order["userId"]),
    )


def errors(response) -> list[dict]:
    return response.json()["errors"]


async def test_paying_requires_sign_in(client, clean_db):
    order = await an_order(clean_db)
    response = await client.post(URL, json={"orderId": order["_id"], "token": "tok_visa"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"token": "tok_visa"}, [{"message": "OrderId must be provided", "field": "orderId"}]),
        (
            {"orderId": {"$ne": ""}, "token": "tok_visa"},
            [{"message": "OrderId must be provided", "field": "orderId"}],
        ),
        ({"orderId": str(ObjectId())}, [{"message": "Token is required", "field": "token"}]),
        (
            {"orderId": str(ObjectId()), "token": "  "},
            [{"message": "Token is required", "field": "token"}],
        ),
    ],
)
async def test_missing_or_invalid_fields_are_400_with_their_field(client, body, expected):
    response = await client.post(URL, json=body, cookies=signed_in(str(ObjectId())))
    assert response.status_code == 400
    assert errors(response) == expected


async def test_an_unknown_order_is_404(client):
    response = await pay(client, {"_id": str(ObjectId()), "userId": str(ObjectId())})
    assert response.status_code == 404
    assert errors(response) == [{"message": "Order not found"}]


async def test_someone_elses_order_is_403(client, clean_db, provider):
    order = await an_order(clean_db)
    response = await pay(client, order, user=str(ObjectId()))
    assert response.status_code == 403
    assert provider.state == {}


async def test_a_cancelled_or_expired_order_cannot_be_paid(client, clean_db, provider):
    cancelled = await an_order(clean_db, status="cancelled")
    expired = await an_order(clean_db, expires_in=-1)
    for order in (cancelled, expired):
        response = await pay(client, order)
        assert response.status_code == 400
        assert errors(response) == [{"message": "Cannot pay for a cancelled order"}]
    assert provider.state == {}


async def test_paying_authorizes_the_exact_cents_saves_the_payment_and_publishes(
    client, clean_db, provider, recording_nats
):
    order = await an_order(clean_db, price_cents=1999)
    response = await pay(client, order)
    assert response.status_code == 201
    body = response.json()
    assert body["orderId"] == order["_id"] and body["stripeId"].startswith("pi_test_")
    assert body["status"] == "authorized"
    assert provider.state == {body["stripeId"]: "authorized"}  # held, nothing captured
    assert provider.amounts == {body["stripeId"]: 1999}
    saved = await clean_db.payments.find_one({"orderId": order["_id"]})
    assert saved["status"] == "authorized"
    assert saved["stripeId"] == body["stripeId"] and str(saved["_id"]) == body["id"]
    assert (saved["amountCents"], saved["currency"], saved["token"]) == (1999, "usd", None)
    [message] = recording_nats.published
    assert message.subject == "payment.authorized"
    assert message.data == {
        "id": body["id"],
        "orderId": order["_id"],
        "amountCents": 1999,
        "orderVersion": 0,
    }
    assert message.headers == {
        "Nats-Msg-Id": f"payment.authorized:{body['id']}",
        "Ticketing-Schema": "payment.authorized/1",
    }


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("tok_chargeDeclined", "Your card was declined."),
        ("tok_chargeDeclinedInsufficientFunds", "Your card has insufficient funds."),
    ],
)
async def test_a_declined_card_is_402_in_the_providers_words_and_the_order_stays_payable(
    client, clean_db, recording_nats, token, message
):
    order = await an_order(clean_db)
    response = await pay(client, order, token)
    assert response.status_code == 402
    assert errors(response) == [{"message": message}]
    assert await clean_db.payments.count_documents({}) == 0
    assert recording_nats.published == []
    assert (await pay(client, order, "tok_mastercard")).status_code == 201


async def test_an_unknown_token_is_400(client, clean_db):
    order = await an_order(clean_db)
    response = await pay(client, order, "tok_nonsense")
    assert response.status_code == 400
    assert errors(response) == [{"message": "Invalid card token", "field": "token"}]
    assert (await pay(client, order)).status_code == 201


async def test_paying_twice_one_after_the_other_charges_once(client, clean_db, provider):
    order = await an_order(clean_db)
    assert (await pay(client, order)).status_code == 201
    again = await pay(client, order)
    assert again.status_code == 400
    assert errors(again) == [{"message": "Order already paid"}]
    assert len(provider.state) == 1


async def test_simultaneous_payments_for_one_order_charge_once(
    client, clean_db, provider, recording_nats
):
    order = await an_order(clean_db)
    responses = await asyncio.gather(*(pay(client, order) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [201] + [400] * 5
    assert all(
        errors(r) == [{"message": "Order already paid"}] for r in responses if r.status_code == 400
    )
    assert len(provider.state) == 1  # one idempotency key: one authorization
    assert await clean_db.payments.count_documents({}) == 1
    assert len(recording_nats.payloads("payment.authorized")) == 1


async def test_a_crash_between_the_authorization_and_the_save_is_healed_by_a_retry(
    client, clean_db, provider, recording_nats, monkeypatch
):
    order = await an_order(clean_db)
    real_save = repository.record_authorized

    async def crash_after_authorizing(*args, **kwargs):
        raise RuntimeError("process died right after the provider authorized")

    monkeypatch.setattr(repository, "record_authorized", crash_after_authorizing)
    assert (await pay(client, order)).status_code == 500
    [charge_id] = provider.state  # the card is held, the payment is not saved
    attempt = await clean_db.payments.find_one({})
    assert attempt["status"] == "authorizing"

    monkeypatch.setattr(repository, "record_authorized", real_save)
    retry = await pay(client, order, "tok_visa")
    assert retry.status_code == 201
    assert list(provider.state) == [charge_id]  # the same hold, not a second one
    assert retry.json()["stripeId"] == charge_id
    assert len(recording_nats.payloads("payment.authorized")) == 1


async def test_a_cross_site_form_cannot_change_anything(client, clean_db):
    """The CSRF guard: a valid body declared as a form or plain text → 415, not stored."""
    responses = await non_json_state_changes(client, signed_in("0123456789abcdef01234567"))
    assert len(responses) == 3  # POST /api/payments, 3 types each
    assert not_refused_as_non_json(responses) == {}
    assert await stored_documents(clean_db) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{"orderId": "{"0" * 24}", "token": "tok_{NOT_TEXT}"}}', "token"),
        (f'{{"orderId": "{NOT_TEXT}", "token": "tok_visa"}}', "orderId"),
    ],
)
async def test_a_field_that_is_not_text_is_400_naming_it_and_nothing_is_stored(
    client, clean_db, body, field
):
    """A lone surrogate in the card token was a 500 (encoding it for the database)."""
    response = await send_raw_json(client, "POST", URL, body, cookies=signed_in("u1"))
    assert response.status_code == 400
    message = f"{field[:1].upper()}{field[1:]} must be valid text"
    assert response.json() == {"errors": [{"message": message, "field": field}]}
    assert await stored_documents(clean_db) == 0
