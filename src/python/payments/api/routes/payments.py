"""/api/payments: pay for your order, exactly once (authorize now, capture once orders
completes the order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from common.context import context_of
from common.deps import DbDep, LimitedWriter, OutboxDep, get_settings
from common.errors import (
    BadGatewayError,
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    PaymentRequiredError,
    error_responses,
)
from common.events import OrderStatus
from common.mongo import VersionConflict
from common.responses import ModelResponse
from payments import repository
from payments.core.config import PaymentsSettings
from payments.parts import parts_of
from payments.providers import CardDeclined, InvalidToken, PaymentProvider, ProviderUnavailable
from payments.schemas import PaymentIn, PaymentOut
from payments.settlement import Settler

router = APIRouter(prefix="/api/payments", tags=["payments"])

CLOSING = timedelta(seconds=5)
"""No payment starts this close to the order's expiry: the charge and its event must
reach orders before the expiration does."""


class OrderNotFound(NotFoundError):
    default_message = "Order not found"


class AlreadyPaid(BadRequestError):
    default_message = "Order already paid"


PAID = (repository.AUTHORIZED, repository.CAPTURED)
RELEASED = (repository.VOIDED, repository.REFUNDED)


async def get_provider(request: Request) -> PaymentProvider:
    return parts_of(context_of(request)).provider


async def get_settler(request: Request) -> Settler:
    return parts_of(context_of(request)).settler


ProviderDep = Annotated[PaymentProvider, Depends(get_provider)]
SettlerDep = Annotated[Settler, Depends(get_settler)]
SettingsDep = Annotated[PaymentsSettings, Depends(get_settings)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentOut,
    summary="Pay for your order: the card is authorized, and charged once orders completes it",
    responses=error_responses(400, 401, 402, 403, 404, 413, 429, 502, 503),
)
async def pay(
    body: PaymentIn,
    user: LimitedWriter,
    db: DbDep,
    outbox: OutboxDep,
    provider: ProviderDep,
    settings: SettingsDep,
    settler: SettlerDep,
) -> ModelResponse:
    """400 `OrderId must be provided` / `Token is required`; 404 `Order not found`; 403;
    400 `Cannot pay for a cancelled order` (also once it has expired); 400 `Order
    already paid`; 402 with the provider's message for a declined card (the order stays
    payable); 400 `Invalid card token`.

    201 `{id, orderId, stripeId, status: "authorized"}`: the amount is held on the card
    and `payment.authorized` published. Orders then decides: it completes the order
    (the settler captures: `payment.created`) or cancels it (the hold is voided)."""
    order = await repository.get_order(db, body.orderId)
    if order is None:
        raise OrderNotFound()
    if order["userId"] != user.id:
        raise ForbiddenError("This order is not yours")
    existing = await repository.get_payment(db, order["_id"])
    if order["status"] == OrderStatus.COMPLETE or (
        existing is not None and existing["status"] in PAID
    ):
        raise AlreadyPaid()
    if (
        order["status"] == OrderStatus.CANCELLED
        or datetime.now(UTC) >= order["expiresAt"] - CLOSING
        or (existing is not None and existing["status"] in RELEASED)
    ):
        raise BadRequestError("Cannot pay for a cancelled order")
    attempt = await repository.start_attempt(db, order, body.token, settings.currency)
    if attempt["status"] != repository.AUTHORIZING:
        raise AlreadyPaid()
    try:
        charge = await repository.authorize_attempt(db, provider, attempt)
    except CardDeclined as exc:
        raise PaymentRequiredError(str(exc)) from None
    except InvalidToken:
        raise BadRequestError("Invalid card token", field="token") from None
    except ProviderUnavailable as exc:
        # the attempt stays: a retry asks again with the same key, never holding twice
        raise BadGatewayError(f"{exc}; retry: you will not be charged twice") from None
    try:
        payment = await repository.record_authorized(outbox, attempt, charge)
    except VersionConflict:
        raise AlreadyPaid() from None  # a simultaneous request saved this same hold
    # The order may have been cancelled while the card was being authorized: the
    # settler voids it now (its listener may have looked before this was saved).
    settler.wake()
    out = PaymentOut(
        id=str(payment["_id"]), orderId=payment["orderId"], stripeId=charge.id, status="authorized"
    )
    return ModelResponse(out, status.HTTP_201_CREATED)
