"""The money auditor: each violation it must report, from events it rebuilds (unit), and
the same read back from a REAL stream."""

from datetime import UTC, datetime, timedelta

from common.audit import audit, stories, violations
from common.events import (
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderCreatedEvent,
    PaymentAuthorizedEvent,
    PaymentCreatedEvent,
    PaymentRefundedEvent,
    PaymentVoidedEvent,
    publish,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=1)


def created(order: str, ticket: str = "t1", expires: datetime = NOW + timedelta(minutes=10)):
    data = {
        "id": order,
        "version": 0,
        "status": "created",
        "userId": "u",
        "expiresAt": expires.isoformat().replace("+00:00", "Z"),
        "ticket": {"id": ticket, "price": 10},
    }
    return ("order.created", data, LONG_AGO)


def event(subject: str, at: datetime = LONG_AGO, **data):
    return (subject, data, at)


def found(*events, now=NOW) -> list[str]:
    return [str(v) for v in violations(stories(events), now=now)]


def test_a_bought_ticket_is_clean():
    assert (
        found(
            created("o1"),
            event("payment.authorized", id="p1", orderId="o1"),
            event("order.completed", id="o1"),
            event("payment.created", id="p1", orderId="o1"),
        )
        == []
    )


def test_a_capture_on_a_cancelled_order_is_reported_until_refunded():
    paid_then_cancelled = [
        created("o1"),
        event("payment.authorized", id="p1", orderId="o1"),
        event("order.cancelled", id="o1"),
        event("payment.created", id="p1", orderId="o1"),
    ]
    assert found(*paid_then_cancelled) == ["I1 order o1: payment p1 captured, order not complete"]
    assert found(*paid_then_cancelled, event("payment.refunded", id="p1", orderId="o1")) == []


def test_an_authorization_not_voided_after_a_cancel_is_reported_past_the_margin():
    story = [
        created("o1"),
        event("payment.authorized", id="p1", orderId="o1"),
        event("order.cancelled", id="o1", at=NOW - timedelta(seconds=5)),
    ]
    assert found(*story) == []  # within the margin: the settler is on it
    assert found(*story, now=NOW + timedelta(minutes=5)) == [
        "I1 order o1: cancelled; payment p1 never voided"
    ]
    assert (
        found(
            *story, event("payment.voided", id="p1", orderId="o1"), now=NOW + timedelta(minutes=5)
        )
        == []
    )


def test_a_ticket_sold_or_charged_twice_is_reported():
    assert found(
        created("o1"),
        created("o2"),
        event("payment.authorized", id="p1", orderId="o1"),
        event("payment.authorized", id="p2", orderId="o2"),
        event("order.completed", id="o1"),
        event("order.completed", id="o2"),
        event("payment.created", id="p1", orderId="o1"),
        event("payment.created", id="p2", orderId="o2"),
    ) == [
        "I2 order o2: ticket t1 sold to ['o1', 'o2']",
        "I2 order o2: ticket t1 charged to ['o1', 'o2']",
    ]


def test_an_order_left_open_past_its_expiry_and_an_uncaptured_sale_are_reported():
    assert found(
        created("o1", expires=NOW - timedelta(minutes=5)),
        created("o2", ticket="t2"),
        event("payment.authorized", id="p2", orderId="o2"),
        event("order.completed", id="o2"),
    ) == [
        "ends order o1: past its expiry and still open",
        "ends order o2: complete; payment p2 never captured",
    ]


async def test_the_audit_reads_the_real_stream(nats_manager):
    js = nats_manager.jetstream
    assert (await audit(js)).text() == "audit: 0 events, 0 orders, 0 payments: no violation"
    expires = datetime.now(UTC) + timedelta(minutes=15)
    for order in ("o1", "o2"):
        await publish(
            js,
            OrderCreatedEvent(
                id=order,
                version=0,
                status="created",
                userId="u",
                expiresAt=expires,
                ticket={"id": "t1", "price": 10},
            ),
        )
        await publish(
            js,
            PaymentAuthorizedEvent(id=f"p{order}", orderId=order, amountCents=1000, orderVersion=0),
        )
    await publish(js, OrderCompletedEvent(id="o1", version=1, ticket={"id": "t1"}))
    await publish(js, PaymentCreatedEvent(id="po1", orderId="o1", stripeId="pi_1"))
    await publish(js, OrderCancelledEvent(id="o2", version=1, ticket={"id": "t1"}))
    await publish(js, PaymentVoidedEvent(id="po2", orderId="o2"))
    report = await audit(js)
    assert report.text() == "audit: 8 events, 2 orders, 2 payments: no violation"
    await publish(js, PaymentCreatedEvent(id="po2", orderId="o2", stripeId="pi_2"))
    report = await audit(js)
    assert not report.clean
    assert [str(v) for v in report.violations] == [
        "I1 order o2: payment po2 captured, order not complete",
        "I2 order o2: ticket t1 charged to ['o1', 'o2']",
    ]
    await publish(js, PaymentRefundedEvent(id="po2", orderId="o2"))
    assert (await audit(js)).clean


def test_a_dispute_is_listed_for_a_look_not_counted_as_a_violation():
    story = stories(
        [
            created("o1"),
            event("payment.authorized", id="p1", orderId="o1"),
            event("order.completed", id="o1", version=1),
            event("payment.created", id="p1", orderId="o1"),
            event("payment.disputed", id="p1", orderId="o1", disputeId="dp_1", reason="fraudulent"),
        ]
    )
    assert story["o1"].payments["p1"].disputes == ["fraudulent"]
    assert violations(story, now=NOW) == []
