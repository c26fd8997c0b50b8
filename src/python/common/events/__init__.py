"""Events: the contract (subjects, payloads, stream), publishing and listeners."""

from common.events.contracts import (
    DUPLICATE_WINDOW_SECONDS,
    EVENT_MODELS,
    STREAM_NAME,
    TICKETING_STREAM,
    Event,
    ExpirationCompleteEvent,
    OrderCancelledEvent,
    OrderCreatedEvent,
    OrderStatus,
    PaymentCreatedEvent,
    SessionRevokedEvent,
    Subject,
    TicketCreatedEvent,
    TicketUpdatedEvent,
    iso_utc,
)
from common.events.listener import EventAhead, Listener, durable_name
from common.events.publisher import DEFAULT_PUBLISH_TIMEOUT, PublishError, publish, publish_raw

__all__ = [
    "DEFAULT_PUBLISH_TIMEOUT",
    "DUPLICATE_WINDOW_SECONDS",
    "EVENT_MODELS",
    "STREAM_NAME",
    "TICKETING_STREAM",
    "Event",
    "EventAhead",
    "ExpirationCompleteEvent",
    "Listener",
    "OrderCancelledEvent",
    "OrderCreatedEvent",
    "OrderStatus",
    "PaymentCreatedEvent",
    "PublishError",
    "SessionRevokedEvent",
    "Subject",
    "TicketCreatedEvent",
    "TicketUpdatedEvent",
    "durable_name",
    "iso_utc",
    "publish",
    "publish_raw",
]
