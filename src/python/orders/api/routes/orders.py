"""/api/orders: buy a ticket (reserve it for a while), see and cancel your orders."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from common.auth import CurrentUser
from common.deps import (
    IDEMPOTENCY_KEY,
    DbDep,
    IdempotencyKeyDep,
    LimitedWriter,
    OutboxDep,
    RequiredUser,
    get_settings,
)
from common.errors import BadRequestError, ForbiddenError, NotFoundError, error_responses
from common.events import OrderStatus
from common.mongo import VersionConflict
from common.responses import ModelResponse
from orders import repository
from orders.core.config import OrdersSettings
from orders.schemas import OrderIn, OrderOut

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/orders", tags=["orders"])

CANCEL_ATTEMPTS = 3  # a cancel racing an expiration or a payment re-reads the order


class TicketNotFound(NotFoundError):
    default_message = "Ticket not found"


class OrderNotFound(NotFoundError):
    default_message = "Order not found"


SettingsDep = Annotated[OrdersSettings, Depends(get_settings)]


async def _find_own(db: DbDep, order_id: str, user: CurrentUser) -> dict[str, Any]:
    doc = await repository.get(db, order_id)
    if doc is None:
        raise OrderNotFound()
    if doc["userId"] != user.id:
        raise ForbiddenError("This order is not yours")
    return doc


def _expiry(settings: OrdersSettings) -> datetime:
    """Now + the window, to the millisecond (what MongoDB and the JSON keep)."""
    moment = datetime.now(UTC) + timedelta(seconds=settings.order_expiration_seconds)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    summary="Buy a ticket: reserve it until the order expires",
    responses=error_responses(400, 401, 404, 413, 429, 503),
)
async def create_order(
    body: OrderIn,
    user: LimitedWriter,
    db: DbDep,
    outbox: OutboxDep,
    settings: SettingsDep,
    request_key: IdempotencyKeyDep,
) -> ModelResponse:
    """400 `TicketId must be provided`; 404 `Ticket not found`; 400 `You cannot buy your
    own ticket`; 400 `Ticket is sold`; 400 `Ticket is already reserved` — one atomic
    insert decides, so of many simultaneous buyers exactly one gets the ticket; 400
    `You already hold N unpaid orders` (MAX_UNPAID_ORDERS_PER_USER, race-free too); 429
    past the user's write budget (`common.limits`).
    With an `Idempotency-Key` header, the order an earlier request with that key placed
    (for the same ticket) is answered 200 with `Idempotent-Replayed: true`, as it is
    now, instead of a second order or "already reserved" — simultaneous ones too; 400
    if that key placed an order for another ticket.
    Publishes `order.created` (once per key)."""
    if request_key and (earlier := await repository.by_request_key(db, user.id, request_key)):
        return _replayed(earlier, body.ticketId)
    ticket = await repository.get_ticket(db, body.ticketId)
    if ticket is None:
        raise TicketNotFound()
    if ticket["userId"] == user.id:
        raise BadRequestError("You cannot buy your own ticket")
    cap = settings.max_unpaid_orders_per_user
    try:
        doc = await repository.create(
            outbox, ticket, user.id, _expiry(settings), max_unpaid=cap, request_key=request_key
        )
    except (
        repository.TicketReserved,
        repository.TooManyUnpaid,
        repository.RequestRepeated,
    ) as lost:
        # the same request, sent twice at once, may have lost to itself
        if request_key and (twin := await repository.by_request_key(db, user.id, request_key)):
            return _replayed(twin, body.ticketId)
        if isinstance(lost, repository.TooManyUnpaid):
            raise BadRequestError(
                f"You already hold {cap} unpaid orders: pay or cancel one first"
            ) from None
        held_by = await repository.holder(db, body.ticketId)
        if held_by is not None and held_by["status"] == OrderStatus.COMPLETE:
            raise BadRequestError("Ticket is sold") from None
        raise BadRequestError("Ticket is already reserved") from None
    log.info("order %s placed for ticket %s", doc["_id"], body.ticketId)
    return ModelResponse(repository.to_out(doc), status.HTTP_201_CREATED)


def _replayed(doc: dict[str, Any], ticket_id: str) -> ModelResponse:
    if doc["ticket"]["id"] != ticket_id:
        raise BadRequestError(
            "This Idempotency-Key was used for another ticket; send a new key", IDEMPOTENCY_KEY
        )
    response = ModelResponse(repository.to_out(doc))
    response.headers["Idempotent-Replayed"] = "true"
    return response


@router.get("", response_model=list[OrderOut], summary="Your orders, newest first")
async def list_orders(user: RequiredUser, db: DbDep) -> list[OrderOut]:
    return [repository.to_out(doc) for doc in await repository.list_for_user(db, user.id)]


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="One of your orders",
    responses=error_responses(401, 403, 404),
)
async def show_order(order_id: str, user: RequiredUser, db: DbDep) -> ModelResponse:
    return ModelResponse(repository.to_out(await _find_own(db, order_id, user)))


@router.delete(
    "/{order_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Cancel your order (the ticket is for sale again)",
    responses=error_responses(400, 401, 403, 404, 409, 503),
)
async def cancel_order(order_id: str, user: RequiredUser, db: DbDep, outbox: OutboxDep) -> None:
    """404; 403 not yours; 400 `Cannot cancel a paid order`. Cancelling a cancelled
    order is a 204 that publishes nothing new; otherwise `order.cancelled` is published."""
    for _ in range(CANCEL_ATTEMPTS):
        doc = await _find_own(db, order_id, user)
        if doc["status"] == OrderStatus.COMPLETE:
            raise BadRequestError("Cannot cancel a paid order")
        if doc["status"] == OrderStatus.CANCELLED:
            return
        try:
            await repository.cancel(outbox, doc)
            return
        except VersionConflict:
            continue  # it changed meanwhile (expired, paid): decide again on what it is now
    raise VersionConflict()
