"""The payments service on a REAL nats-server and MongoDB-wire server: its order replica,
and payment.created on the stream."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from common.events import OrderCancelledEvent, OrderCreatedEvent, publish
from payments.main import create_payments_app
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import app_client
from testkit.streams import stream_messages
from testkit.waiting import eventually

ORDER_ID = str(ObjectId())


@pytest.fixture
async def payments_app(make_settings, clean_db, nats_manager, provider):
    app = create_payments_app(make_settings(), database=clean_db.name, provider=provider)
    async with app_client(app) as client:
        yield client


def created() -> OrderCreatedEvent:
    return OrderCreatedEvent(
        id=ORDER_ID,
        version=0,
        status="created",
        userId="buyer",
        expiresAt=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(milliseconds=5),
        ticket={"id": "t1", "price": 19.99},
    )


async def replica(db) -> dict | None:
    return await db.orders.find_one({"_id": ORDER_ID})


async def test_orders_are_copied_with_exact_cents_then_cancelled_in_order(
    payments_app, clean_db, nats_manager
):
    js = nats_manager.jetstream
    # the cancellation first: it waits for the creation, then applies
    await publish(js, OrderCancelledEvent(id=ORDER_ID, version=1, ticket={"id": "t1"}))
    await publish(js, created())
    await eventually(lambda: _status_is(clean_db, "cancelled"))
    assert await replica(clean_db) == {
        "_id": ORDER_ID,
        "userId": "buyer",
        "status": "cancelled",
        "priceCents": 1999,
        "expiresAt": datetime(2030, 1, 1, 0, 0, 0, 5000, tzinfo=UTC),
        "version": 1,
    }


async def test_why_orders_cancelled_an_order_is_kept_with_it(payments_app, clean_db, nats_manager):
    """order.cancelled version 2 says why (version 1, from an older orders, does not)."""
    js = nats_manager.jetstream
    await publish(js, created())
    why = "The order expired before it was paid"
    await publish(js, OrderCancelledEvent(id=ORDER_ID, version=1, ticket={"id": "t1"}, reason=why))
    await eventually(lambda: _status_is(clean_db, "cancelled"))
    assert (await replica(clean_db))["reason"] == why


async def _status_is(db, status: str) -> bool:
    doc = await replica(db)
    return doc is not None and doc["status"] == status


async def test_a_payment_is_on_the_real_stream_with_its_exact_payload_and_msg_id(
    payments_app, clean_db, nats_manager
):
    js = nats_manager.jetstream
    order = created().model_copy(update={"expiresAt": datetime.now(UTC) + timedelta(minutes=15)})
    await publish(js, order)
    await eventually(lambda: _status_is(clean_db, "created"))
    buyer = session_cookie(TEST_JWT_KEY, user_id="buyer")
    response = await payments_app.post(
        "/api/payments", json={"orderId": ORDER_ID, "token": "tok_visa"}, cookies=buyer
    )
    assert response.status_code == 201
    body = response.json()
    [message] = await stream_messages(js, "payment.authorized")  # acked before the 201
    assert json.loads(message.data) == {
        "id": body["id"],
        "orderId": ORDER_ID,
        "amountCents": 1999,
        "orderVersion": 0,
    }
    assert message.headers["Nats-Msg-Id"] == f"payment.authorized:{body['id']}"
    assert await stream_messages(js, "payment.created") == []  # nothing captured yet
