"""The events contract, defined once: subjects, payload models, stream, dedupe ids.

The Python twin of the seed's `Subjects` enum and `TicketCreatedEvent`-style interfaces.
Payloads are validated when published and when received.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from pydantic import BaseModel, ConfigDict, Field


class Subject(StrEnum):
    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    ORDER_CREATED = "order.created"
    ORDER_CANCELLED = "order.cancelled"
    EXPIRATION_COMPLETE = "expiration.complete"
    PAYMENT_CREATED = "payment.created"


class OrderStatus(StrEnum):
    """Order life cycle, as in the original app."""

    CREATED = "created"
    CANCELLED = "cancelled"
    AWAITING_PAYMENT = "awaiting:payment"
    COMPLETE = "complete"


class Event(BaseModel):
    """Base of every payload. Unknown fields are ignored so a newer publisher can add some."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def dedupe_key(self) -> str:
        """The part of `Nats-Msg-Id` after the subject: `<id>:<version>` for versioned data."""
        return f"{self.id}:{self.version}"  # type: ignore[attr-defined]


class TicketCreatedEvent(Event):
    id: str
    version: int = Field(ge=0)
    title: str
    price: float = Field(gt=0)
    userId: str


class TicketUpdatedEvent(Event):
    id: str
    version: int = Field(ge=0)
    title: str
    price: float = Field(gt=0)
    userId: str
    orderId: str | None = None


class OrderTicket(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str
    price: float = Field(gt=0)


class OrderTicketRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str


class OrderCreatedEvent(Event):
    id: str
    version: int = Field(ge=0)
    status: OrderStatus
    userId: str
    expiresAt: datetime
    ticket: OrderTicket


class OrderCancelledEvent(Event):
    id: str
    version: int = Field(ge=0)
    ticket: OrderTicketRef


class ExpirationCompleteEvent(Event):
    orderId: str

    def dedupe_key(self) -> str:  # happens once per order
        return self.orderId


class PaymentCreatedEvent(Event):
    id: str
    orderId: str
    stripeId: str

    def dedupe_key(self) -> str:  # a payment is never updated
        return self.id


EVENT_MODELS: dict[Subject, type[Event]] = {
    Subject.TICKET_CREATED: TicketCreatedEvent,
    Subject.TICKET_UPDATED: TicketUpdatedEvent,
    Subject.ORDER_CREATED: OrderCreatedEvent,
    Subject.ORDER_CANCELLED: OrderCancelledEvent,
    Subject.EXPIRATION_COMPLETE: ExpirationCompleteEvent,
    Subject.PAYMENT_CREATED: PaymentCreatedEvent,
}


def message_id(subject: Subject, event: Event) -> str:
    """`Nats-Msg-Id`: JetStream drops a second message with the same id (within the window)."""
    return f"{subject.value}:{event.dedupe_key()}"


def encode_event(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


STREAM_NAME = "TICKETING"
DUPLICATE_WINDOW_SECONDS = 120.0

TICKETING_STREAM = StreamConfig(
    name=STREAM_NAME,
    subjects=["ticket.>", "order.>", "expiration.>", "payment.>"],
    storage=StorageType.FILE,
    retention=RetentionPolicy.LIMITS,
    duplicate_window=DUPLICATE_WINDOW_SECONDS,
)
