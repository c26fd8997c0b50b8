"""Payment bodies, validated at the edge."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator

from common.errors import RequestBody, field_error
from common.mongo import is_object_id

TOKEN_MAX = 255


def order_id(value: object) -> str:
    if not is_object_id(value):
        raise field_error("OrderId must be provided")
    return value


def card_token(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > TOKEN_MAX:
        raise field_error("Token is required")
    return value.strip()


class PaymentIn(RequestBody):
    orderId: Annotated[str, BeforeValidator(order_id)]
    token: Annotated[str, BeforeValidator(card_token)]


class PaymentOut(BaseModel):
    id: str
    orderId: str
    stripeId: str
    status: str  # "authorized": held on the card; captured once orders completes the order
