"""Order bodies. An order shows its ticket as it was when ordered (a reserved ticket
cannot be edited, so that is also how it is now)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator

from common.errors import RequestBody, field_error
from common.events import OrderStatus
from common.mongo import is_object_id


def ticket_id(value: object) -> str:
    """A ticket id as the tickets service makes them (24 hex digits); anything else,
    an operator object like {"$gt": ""} included, is refused at the edge."""
    if not is_object_id(value):
        raise field_error("TicketId must be provided")
    return value


class OrderIn(RequestBody):
    ticketId: Annotated[str, BeforeValidator(ticket_id)]


class OrderTicketOut(BaseModel):
    id: str
    title: str
    price: int | float
    version: int


class OrderOut(BaseModel):
    id: str
    status: OrderStatus
    userId: str
    expiresAt: str  # ISO 8601, UTC
    version: int
    ticket: OrderTicketOut
    reason: str | None = None  # why the service cancelled it (absent otherwise)
    payment: str | None = None  # captured, voided, refunded, disputed (absent: none)
