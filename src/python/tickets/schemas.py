"""Ticket bodies. Prices are exact: validated to cents, stored as integer cents, and
returned as a JSON number (20, 20.5, 19.99) as the original returns them."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from common.errors import RequestBody, field_error

TITLE_MAX = 200
PRICE_MAX_CENTS = 100_000_000  # 1,000,000.00


def clean_title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_error("Title is required")
    title = value.strip()
    if len(title) > TITLE_MAX:
        raise field_error(f"Title must be at most {TITLE_MAX} characters")
    return title


def price_to_cents(value: object) -> int:
    """A JSON number > 0 with at most 2 decimals, as integer cents. Strings, booleans,
    NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise field_error("Price must be greater than 0")
    if isinstance(value, float) and not math.isfinite(value):
        raise field_error("Price must be greater than 0")
    exact = Decimal(str(value))  # the shortest repr of a finite number: 19.99 stays 19.99
    if exact <= 0:
        raise field_error("Price must be greater than 0")
    cents = exact * 100
    if cents != cents.to_integral_value():
        raise field_error("Price must have at most 2 decimal places")
    if cents > PRICE_MAX_CENTS:
        raise field_error("Price must be at most 1000000")
    return int(cents)


class TicketIn(RequestBody):
    title: Annotated[str, BeforeValidator(clean_title)]
    price_cents: Annotated[int, BeforeValidator(price_to_cents)] = Field(
        alias="price", json_schema_extra={"type": "number", "exclusiveMinimum": 0}
    )


class TicketOut(BaseModel):
    id: str
    title: str
    price: int | float
    userId: str
    version: int
    orderId: str | None = None
    status: str = "available"  # available | reserved | sold


class MyTicketOut(TicketOut):
    """`GET /api/tickets/mine`: the seller's view adds until when a buyer holds it."""

    reservedUntil: datetime | None = None
