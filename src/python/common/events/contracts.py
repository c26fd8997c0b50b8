"""The events contract, defined once: subjects, payload models, stream, dedupe ids.

The Python twin of the original's `Subjects` enum and `TicketCreatedEvent`-style interfaces.
Payloads are validated when published and when received.

Each model has a schema version (`schema_version`), sent with every message in its
`Ticketing-Schema` header (`common.events.versions`), its JSON Schema per version
committed in `schemas/<subject>/<n>.json`; a version may only add optional fields to
the one before (the gate: `schemas_test.py`), and each step n → n+1 has an upcaster
beside the model, so a listener always receives the newest version, whatever version
the stream holds (docs/development.md, "Changing an event").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer


class Subject(StrEnum):
    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    TICKET_REFUSED = "ticket.refused"
    ORDER_CREATED = "order.created"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_COMPLETED = "order.completed"
    EXPIRATION_COMPLETE = "expiration.complete"
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_CREATED = "payment.created"
    PAYMENT_VOIDED = "payment.voided"
    PAYMENT_REFUNDED = "payment.refunded"
    PAYMENT_DISPUTED = "payment.disputed"
    SESSION_REVOKED = "session.revoked"


class OrderStatus(StrEnum):
    """Order life cycle, as in the original app."""

    CREATED = "created"
    CANCELLED = "cancelled"
    AWAITING_PAYMENT = "awaiting:payment"
    COMPLETE = "complete"


class Event(BaseModel):
    """Base of every payload: each subclass is bound to its one subject. Unknown fields
    are ignored so a newer publisher can add some."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    subject: ClassVar[Subject]
    schema_version: ClassVar[int] = 1  # the payload's version: a new one adds optional fields
    # version n's payload (a dict, as JSON) → version n+1's, for n < schema_version
    upcasters: ClassVar[Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}

    def dedupe_key(self) -> str:
        """The part of `Nats-Msg-Id` after the subject: `<id>:<version>` for versioned data."""
        return f"{self.id}:{self.version}"  # type: ignore[attr-defined]

    def message_id(self) -> str:
        """`Nats-Msg-Id`: JetStream drops a second message with the same id (in the window)."""
        return f"{self.subject.value}:{self.dedupe_key()}"

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class TicketCreatedEvent(Event):
    subject = Subject.TICKET_CREATED
    id: str
    version: int = Field(ge=0)
    title: str
    price: float = Field(gt=0)
    userId: str


class TicketUpdatedEvent(Event):
    subject = Subject.TICKET_UPDATED
    id: str
    version: int = Field(ge=0)
    title: str
    price: float = Field(gt=0)
    userId: str
    orderId: str | None = None


class TicketRefusedEvent(Event):
    """Tickets did not reserve ticket `id` for order `orderId` (`reason`: "price_changed",
    the order was placed at a price the ticket no longer has): orders cancels the order
    at once, saying why. Tickets is the one authority on who holds a ticket; this is how
    orders learns of a refusal. Once per order."""

    subject = Subject.TICKET_REFUSED
    id: str
    orderId: str
    reason: str

    def dedupe_key(self) -> str:  # an order is refused once
        return self.orderId


class OrderTicket(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str
    price: float = Field(gt=0)


class OrderTicketRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str


def iso_utc(moment: datetime) -> str:
    """`2026-11-26T07:13:01.123Z`, as JavaScript's `toISOString()` writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OrderCreatedEvent(Event):
    subject = Subject.ORDER_CREATED
    id: str
    version: int = Field(ge=0)
    status: OrderStatus
    userId: str
    expiresAt: AwareDatetime  # (a time without its zone is refused: no guessing)
    ticket: OrderTicket

    @field_serializer("expiresAt")
    def _iso_utc(self, moment: datetime) -> str:
        return iso_utc(moment)


def _cancelled_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 1 said nothing of why: no reason (as for a buyer's own cancel)."""
    return {"reason": None, **payload}


class OrderCancelledEvent(Event):
    """Version 2 adds `reason`: why orders cancelled the order ("The order expired
    before it was paid", ...), absent when the buyer cancelled it — what the order's
    API shows, now also where the cancellation travels: payments keeps it with the
    authorization it voids, so a void says why without asking orders."""

    subject = Subject.ORDER_CANCELLED
    schema_version = 2
    upcasters = {1: _cancelled_v1_to_v2}
    id: str
    version: int = Field(ge=0)
    ticket: OrderTicketRef
    reason: str | None = None


class OrderCompletedEvent(Event):
    """Orders accepted the order's payment: it is final, its ticket is sold, and the
    payment may be captured. Published once per order, by orders alone."""

    subject = Subject.ORDER_COMPLETED
    id: str
    version: int = Field(ge=0)
    ticket: OrderTicketRef


class ExpirationCompleteEvent(Event):
    subject = Subject.EXPIRATION_COMPLETE
    orderId: str

    def dedupe_key(self) -> str:  # happens once per order
        return self.orderId


class PaymentAuthorizedEvent(Event):
    """The card holds `amountCents` for the order (nothing taken yet): orders decides
    whether the order completes (`order.completed`) or not (`order.cancelled`)."""

    subject = Subject.PAYMENT_AUTHORIZED
    id: str
    orderId: str
    amountCents: int = Field(gt=0)
    orderVersion: int = Field(ge=0)

    def dedupe_key(self) -> str:  # one authorization per payment
        return self.id


class PaymentCreatedEvent(Event):
    """Money taken: the payment was captured, for an order orders completed."""

    subject = Subject.PAYMENT_CREATED
    id: str
    orderId: str
    stripeId: str

    def dedupe_key(self) -> str:  # a payment is captured once
        return self.id


class PaymentSettledEvent(Event):
    """What became of a payment, once: `{id, orderId}` (the payment's and its order's)."""

    id: str
    orderId: str

    def dedupe_key(self) -> str:
        return self.id


class PaymentVoidedEvent(PaymentSettledEvent):
    """The authorization was released (its order was cancelled): nothing was taken."""

    subject = Subject.PAYMENT_VOIDED


class PaymentRefundedEvent(PaymentSettledEvent):
    """Money taken for an order that did not complete was given back."""

    subject = Subject.PAYMENT_REFUNDED


class PaymentDisputedEvent(Event):
    """The card holder disputed a payment with their bank (Stripe's
    `charge.dispute.created`): the money may be taken back, whatever orders decided.
    Once per dispute. Orders shows it on the order; the auditor lists it."""

    subject = Subject.PAYMENT_DISPUTED
    id: str  # the payment's
    orderId: str
    disputeId: str
    reason: str = ""  # the bank's ("fraudulent", "product_not_received", ...)

    def dedupe_key(self) -> str:  # a dispute is opened once
        return self.disputeId


class SessionRevokedEvent(Event):
    """A user signed out: the token `jti` is refused everywhere until `exp` (epoch
    seconds), when it would have expired anyway (`common.revocations`). With
    `allBefore` (sign out everywhere), so is every token of `userId` issued before that
    instant (epoch seconds); `exp` is then when the last of those expires."""

    subject = Subject.SESSION_REVOKED
    jti: str = Field(min_length=1, max_length=64)
    userId: str
    exp: int
    allBefore: int | None = None

    def dedupe_key(self) -> str:  # a token is signed out once
        return self.jti


EVENT_MODELS: dict[Subject, type[Event]] = {
    model.subject: model
    for model in (
        TicketCreatedEvent,
        TicketUpdatedEvent,
        TicketRefusedEvent,
        OrderCreatedEvent,
        OrderCancelledEvent,
        OrderCompletedEvent,
        ExpirationCompleteEvent,
        PaymentAuthorizedEvent,
        PaymentCreatedEvent,
        PaymentVoidedEvent,
        PaymentRefundedEvent,
        PaymentDisputedEvent,
        SessionRevokedEvent,
    )
}
"""Which payload model a subject carries (derived from the models: one place each)."""

STREAM_NAME = "TICKETING"
DUPLICATE_WINDOW_SECONDS = 120.0

TICKETING_STREAM = StreamConfig(
    name=STREAM_NAME,
    subjects=["ticket.>", "order.>", "expiration.>", "payment.>", "session.>"],
    storage=StorageType.FILE,
    retention=RetentionPolicy.LIMITS,
    duplicate_window=DUPLICATE_WINDOW_SECONDS,
    # the expiration service's schedules: nats-server >= 2.12 (expiration/schedule.py)
    allow_msg_schedules=True,
)


def ticketing_stream(
    *, max_age_seconds: float = 0, max_bytes: int = -1, replicas: int = 1
) -> StreamConfig:
    """The stream with this environment's limits (0 / -1: none), so it never fills its
    volume (a full JetStream store refuses every write). Past a limit the OLDEST
    messages go: the server requires that of a stream with message schedules (it
    refuses "discard new"), so size the limits well above what the consumers lag.

    `replicas`: on a JetStream cluster, 3 makes an ack mean "stored on a majority of
    the nodes", so losing one node loses no acknowledged event; 1 on a single server."""
    return dataclasses.replace(
        TICKETING_STREAM,
        max_age=max_age_seconds or None,
        max_bytes=max_bytes,
        num_replicas=replicas,
    )
