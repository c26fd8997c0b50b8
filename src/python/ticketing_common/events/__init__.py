"""Events: the contract (subjects, payloads, stream), publishers and listeners."""

from ticketing_common.events.contracts import (
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
    Subject,
    TicketCreatedEvent,
    TicketUpdatedEvent,
    encode_event,
    message_id,
)
from ticketing_common.events.listener import Listener, durable_name
from ticketing_common.events.publisher import (
    DEFAULT_PUBLISH_TIMEOUT,
    Publisher,
    PublishError,
    publish_raw,
)

__all__ = [
    "DEFAULT_PUBLISH_TIMEOUT",
    "DUPLICATE_WINDOW_SECONDS",
    "EVENT_MODELS",
    "STREAM_NAME",
    "TICKETING_STREAM",
    "Event",
    "ExpirationCompleteEvent",
    "Listener",
    "OrderCancelledEvent",
    "OrderCreatedEvent",
    "OrderStatus",
    "PaymentCreatedEvent",
    "PublishError",
    "Publisher",
    "Subject",
    "TicketCreatedEvent",
    "TicketUpdatedEvent",
    "durable_name",
    "encode_event",
    "message_id",
    "publish_raw",
]
