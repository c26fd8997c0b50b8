"""The settler on a REAL nats-server and MongoDB-wire server: what orders decides about
an order moves its payment — capture on order.completed, void on order.cancelled, refund
of a capture whose order is cancelled — once each, through provider failures too."""

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from common.events import (
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderCreatedEvent,
    publish,
)
from payments.main import create_payments_app
from payments.providers import ProviderUnavailable, TestProvider, read_ledger
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import app_client
from testkit.streams import stream_payloads
from testkit.waiting import eventually

TICKET = {"id": "t1"}


class FlakyProvider(TestProvider):
    """Fails the first `failures` captures, voids and refunds as an outage would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = self.planned_failures = failures

    def _move(self, charge_id, operation, *, frm, to):
        if self.failures > 0:
            self.failures -= 1
            self.calls.append((f"{operation} failed", charge_id))
            raise ProviderUnavailable("the provider is down")
        super()._move(charge_id, operation, frm=frm, to=to)


@pytest.fixture
def provider(request) -> TestProvider:
    """A fresh test provider; parametrized indirectly with how many moves it fails."""
    return FlakyProvider(failures=getattr(request, "param", 0))


@pytest.fixture
async def payments(make_settings, clean_db, nats_manager, provider):
    app = create_payments_app(
        make_settings(settle_interval=0.1), database=clean_db.name, provider=provider
    )
    async with app_client(app) as client:
        yield client


async def known_order(js, db) -> str:
    """An order orders created (order.created), in this service's replica."""
    order_id = str(ObjectId())
    await publish(
        js,
        OrderCreatedEvent(
            id=order_id,
            version=0,
            status="created",
            userId="buyer",
            expiresAt=datetime.now(UTC) + timedelta(minutes=15),
            ticket={"id": "t1", "price": 25},
        ),
    )
    await eventually(lambda: _exists(db.orders, order_id))
    return order_id


async def authorized_order(payments, js, db) -> tuple[str, dict]:
    """An order orders created, paid (authorized) by its buyer through the API."""
    order_id = await known_order(js, db)
    response = await payments.post(
        "/api/payments",
        json={"orderId": order_id, "token": "tok_visa"},
        cookies=session_cookie(TEST_JWT_KEY, user_id="buyer"),
    )
    assert response.status_code == 201, response.text
    return order_id, response.json()


async def _exists(collection, doc_id) -> bool:
    return await collection.count_documents({"_id": doc_id}) == 1


async def status_of(db, order_id: str) -> str:
    return (await db.payments.find_one({"orderId": order_id}))["status"]


async def settled(js, db, order_id: str, status: str, subject: str) -> list[dict]:
    """Wait until the payment reads `status` and its event is on the stream; the
    stream's events of that subject for the order."""

    async def done() -> bool:
        return await status_of(db, order_id) == status and bool(await events(js, subject, order_id))

    await eventually(done)
    return await events(js, subject, order_id)


async def events(js, subject: str, order_id: str) -> list[dict]:
    return [e for e in await stream_payloads(js, subject) if e["orderId"] == order_id]


DECISIONS = {  # what orders decided → the payment's move, its status and its event
    "completed": (OrderCompletedEvent, "capture", "captured", "payment.created"),
    "cancelled": (OrderCancelledEvent, "void", "voided", "payment.voided"),
}


@pytest.mark.parametrize(
    "provider", [0, 2], indirect=True, ids=["provider up", "provider failing twice"]
)
@pytest.mark.parametrize("decision", DECISIONS)
async def test_orders_decision_moves_the_payment_once(
    payments, nats_manager, clean_db, provider, decision
):
    """order.completed → captured, `payment.created` {id, orderId, stripeId} (money
    taken); order.cancelled → voided, `payment.voided`, never captured — once each,
    also when the provider fails the move twice first (retried with the same key)."""
    js = nats_manager.jetstream
    event, move, status, subject = DECISIONS[decision]
    order_id, paid = await authorized_order(payments, js, clean_db)
    await publish(js, event(id=order_id, version=1, ticket=TICKET))
    published = await settled(js, clean_db, order_id, status, subject)
    assert provider.state == {paid["stripeId"]: status}
    expected = {"id": paid["id"], "orderId": order_id}
    if subject == "payment.created":
        expected["stripeId"] = paid["stripeId"]
    assert published == [expected]
    operations = [operation for operation, _ in provider.calls]
    assert operations.count(move) == 1
    assert operations.count(f"{move} failed") == provider.planned_failures
    other = "payment.voided" if decision == "completed" else "payment.created"
    assert await events(js, other, order_id) == []


async def test_a_cancelled_order_cannot_be_paid_again_after_its_void(
    payments, nats_manager, clean_db
):
    js = nats_manager.jetstream
    order_id, _ = await authorized_order(payments, js, clean_db)
    await publish(js, OrderCancelledEvent(id=order_id, version=1, ticket=TICKET))
    await settled(js, clean_db, order_id, "voided", "payment.voided")
    again = await payments.post(
        "/api/payments",
        json={"orderId": order_id, "token": "tok_visa"},
        cookies=session_cookie(TEST_JWT_KEY, user_id="buyer"),
    )
    assert again.json() == {"errors": [{"message": "Cannot pay for a cancelled order"}]}


async def test_a_capture_whose_order_then_reads_cancelled_is_refunded_by_itself(
    payments, nats_manager, clean_db, provider
):
    """No path of ours captures for an order that is not complete; if one ever did (an
    operator's hand, a bug), the money goes back without anyone asking."""
    js = nats_manager.jetstream
    order_id, paid = await authorized_order(payments, js, clean_db)
    await publish(js, OrderCompletedEvent(id=order_id, version=1, ticket=TICKET))
    await settled(js, clean_db, order_id, "captured", "payment.created")
    await publish(js, OrderCancelledEvent(id=order_id, version=2, ticket=TICKET))
    refunded = await settled(js, clean_db, order_id, "refunded", "payment.refunded")
    assert provider.state == {paid["stripeId"]: "refunded"}
    assert refunded == [{"id": paid["id"], "orderId": order_id}]


async def test_the_loop_settles_a_payment_no_event_points_at(
    payments, nats_manager, clean_db, provider
):
    """The process stopped after applying order.completed to its replica and before
    settling (the event was acked): the settler's loop finds the authorized payment of a
    completed order by itself and captures it."""
    js = nats_manager.jetstream
    order_id, paid = await authorized_order(payments, js, clean_db)
    await clean_db.orders.update_one(
        {"_id": order_id}, {"$set": {"status": "complete", "version": 1}}
    )
    created = await settled(js, clean_db, order_id, "captured", "payment.created")
    assert provider.state == {paid["stripeId"]: "captured"}
    assert len(created) == 1


async def test_an_attempt_a_crash_left_authorizing_is_released_once_its_order_is_over(
    payments, nats_manager, clean_db, provider
):
    """The process died after the provider held the card and before it saved that: the
    buyer never retried, and the order expired. The settler asks the provider again
    with the attempt's key (the same hold) and voids it."""
    js = nats_manager.jetstream
    order_id = await known_order(js, clean_db)
    attempt_id = ObjectId()
    held = await provider.authorize(
        amount_cents=2500, currency="usd", token="tok_visa", idempotency_key=f"payment-{attempt_id}"
    )
    await clean_db.payments.insert_one(
        {
            "_id": attempt_id,
            "orderId": order_id,
            "userId": "buyer",
            "status": "authorizing",
            "token": "tok_visa",
            "amountCents": 2500,
            "currency": "usd",
            "orderVersion": 0,
            "version": 0,
            "createdAt": datetime.now(UTC) - timedelta(minutes=5),
        }
    )
    await publish(js, OrderCancelledEvent(id=order_id, version=1, ticket=TICKET))
    voided = await settled(js, clean_db, order_id, "voided", "payment.voided")
    assert provider.state == {held.id: "voided"}
    assert len(voided) == 1


async def test_a_payment_whose_answer_was_lost_is_released_once_its_order_is_over(
    make_settings, clean_db, nats_manager, tmp_path, monkeypatch
):
    """The provider held the card and its answer never came (a timeout): the buyer got
    502, the attempt stays `authorizing`, the card stays held. Once the order is over
    (it expired), the settler asks again with the attempt's key and voids the hold —
    on the provider's own ledger, not just in our database."""
    monkeypatch.setattr("payments.providers.LOST_ANSWER_SECONDS", 0.01)
    settings = make_settings(
        settle_interval=0.1, stale_attempt_seconds=0.5, test_provider_dir=tmp_path
    )
    app = create_payments_app(settings, database=clean_db.name)
    async with app_client(app) as payments:
        js = nats_manager.jetstream
        order_id = await known_order(js, clean_db)
        (tmp_path / "fault").write_text("timeout")
        response = await payments.post(
            "/api/payments",
            json={"orderId": order_id, "token": "tok_visa"},
            cookies=session_cookie(TEST_JWT_KEY, user_id="buyer"),
        )
        (tmp_path / "fault").unlink()
        assert response.status_code == 502, response.text
        assert "you will not be charged twice" in response.json()["errors"][0]["message"]
        assert await status_of(clean_db, order_id) == "authorizing"
        assert list(read_ledger(tmp_path)[0].values()) == ["authorized"]  # the card is held
        await publish(js, OrderCancelledEvent(id=order_id, version=1, ticket=TICKET))
        voided = await settled(js, clean_db, order_id, "voided", "payment.voided")
    assert list(read_ledger(tmp_path)[0].values()) == ["voided"]
    assert len(voided) == 1
