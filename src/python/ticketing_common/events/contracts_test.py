from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ticketing_common.events import (
    EVENT_MODELS,
    ExpirationCompleteEvent,
    OrderCreatedEvent,
    PaymentCreatedEvent,
    Subject,
    TicketCreatedEvent,
    TicketUpdatedEvent,
    encode_event,
    message_id,
)


def test_every_subject_has_a_payload_model():
    assert set(EVENT_MODELS) == set(Subject)


def test_versioned_events_dedupe_on_subject_id_and_version():
    event = TicketCreatedEvent(id="t1", version=3, title="Concert", price=20, userId="u1")
    assert message_id(Subject.TICKET_CREATED, event) == "ticket.created:t1:3"


def test_once_only_events_dedupe_on_their_id():
    assert message_id(Subject.EXPIRATION_COMPLETE, ExpirationCompleteEvent(orderId="o1")) == (
        "expiration.complete:o1"
    )
    payment = PaymentCreatedEvent(id="p1", orderId="o1", stripeId="ch_1")
    assert message_id(Subject.PAYMENT_CREATED, payment) == "payment.created:p1"


def test_optional_order_id_is_omitted_when_absent():
    event = TicketUpdatedEvent(id="t1", version=1, title="A", price=1.5, userId="u1")
    assert encode_event(event) == (b'{"id":"t1","version":1,"title":"A","price":1.5,"userId":"u1"}')


def test_order_created_carries_expiry_as_iso_8601():
    event = OrderCreatedEvent(
        id="o1",
        version=0,
        status="created",
        userId="u1",
        expiresAt=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ticket={"id": "t1", "price": 10},
    )
    assert b'"expiresAt":"2026-01-02T03:04:05Z"' in encode_event(event)


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "t1", "version": 0, "title": "A", "price": 0, "userId": "u1"},
        {"id": "t1", "version": -1, "title": "A", "price": 1, "userId": "u1"},
        {"id": "t1", "version": 0, "title": "A", "price": "free", "userId": "u1"},
        {"id": "t1", "version": 0, "title": "A", "price": 1},
    ],
)
def test_invalid_payloads_are_rejected(payload):
    with pytest.raises(ValidationError):
        TicketCreatedEvent.model_validate(payload)


def test_unknown_fields_from_a_newer_publisher_are_ignored():
    event = TicketCreatedEvent.model_validate(
        {"id": "t1", "version": 0, "title": "A", "price": 1, "userId": "u1", "extra": True}
    )
    assert not hasattr(event, "extra")
