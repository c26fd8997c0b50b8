from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from common.events import (
    EVENT_MODELS,
    ExpirationCompleteEvent,
    OrderCreatedEvent,
    PaymentCreatedEvent,
    Subject,
    TicketCreatedEvent,
    TicketUpdatedEvent,
)


def test_every_subject_has_one_payload_model_bound_to_it():
    assert set(EVENT_MODELS) == set(Subject)
    assert all(model.subject == subject for subject, model in EVENT_MODELS.items())


def test_versioned_events_dedupe_on_subject_id_and_version():
    event = TicketCreatedEvent(id="t1", version=3, title="Concert", price=20, userId="u1")
    assert event.message_id() == "ticket.created:t1:3"


def test_once_only_events_dedupe_on_their_id():
    assert ExpirationCompleteEvent(orderId="o1").message_id() == ("expiration.complete:o1")
    payment = PaymentCreatedEvent(id="p1", orderId="o1", stripeId="ch_1")
    assert payment.message_id() == "payment.created:p1"


def test_optional_order_id_is_omitted_when_absent():
    event = TicketUpdatedEvent(id="t1", version=1, title="A", price=1.5, userId="u1")
    assert event.encode() == (b'{"id":"t1","version":1,"title":"A","price":1.5,"userId":"u1"}')


def test_order_created_carries_expiry_as_iso_8601():
    event = OrderCreatedEvent(
        id="o1",
        version=0,
        status="created",
        userId="u1",
        expiresAt=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ticket={"id": "t1", "price": 10},
    )
    assert b'"expiresAt":"2026-01-02T03:04:05.000Z"' in event.encode()


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
