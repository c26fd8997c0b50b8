"""/api/tickets: the original app's routes, plus pagination; every change publishes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from common.deps import DbDep, LimitedWriter, OutboxDep, RequiredUser
from common.errors import BadRequestError, ForbiddenError, NotFoundError, error_responses
from common.responses import ModelResponse
from tickets import browse as browse_rules
from tickets import repository
from tickets.browse import Browse, Sort
from tickets.repository import Doc
from tickets.schemas import MyTicketOut, TicketIn, TicketOut

router = APIRouter(prefix="/api/tickets", tags=["tickets"])

NEXT_CURSOR_HEADER = "X-Next-Cursor"
TOTAL_COUNT_HEADER = "X-Total-Count"


class TicketNotFound(NotFoundError):
    default_message = "Ticket not found"


async def _find(db: DbDep, ticket_id: str) -> dict:
    doc = await repository.get(db, ticket_id)
    if doc is None:
        raise TicketNotFound()
    return doc


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketOut,
    summary="List a ticket for sale",
    responses=error_responses(400, 401, 413, 429, 503),
)
async def create_ticket(body: TicketIn, user: LimitedWriter, outbox: OutboxDep) -> ModelResponse:
    """429 past the user's write budget (`common.limits`). Saves the ticket with its `ticket.created` event in one write, then waits
    (bounded) for JetStream's ack. If NATS is down the ticket is still created: the
    outbox relay publishes the event when NATS is back."""
    doc = await repository.insert(outbox, body, user.id)
    return ModelResponse(repository.to_out(doc), status.HTTP_201_CREATED)


PageSize = Annotated[int, Query(ge=1, le=200, description="Page size")]
Cursor = Annotated[
    str | None, Query(description=f"The `{NEXT_CURSOR_HEADER}` of the previous page")
]


def _one_page(
    docs: list[Doc], limit: int, response: Response, cursor_of: Callable[[Doc], str]
) -> list[Doc]:
    """The first `limit` of `limit + 1` read; if there were more, `X-Next-Cursor` says
    where the next page starts."""
    if len(docs) > limit:
        docs = docs[:limit]
        response.headers[NEXT_CURSOR_HEADER] = cursor_of(docs[-1])
    return docs


@router.get(
    "",
    response_model=list[TicketOut],
    response_model_exclude_none=True,
    summary="Tickets for sale: search, filter by price, sort, page",
    responses=error_responses(400),
)
async def list_tickets(
    db: DbDep,
    response: Response,
    limit: PageSize = 50,
    cursor: Cursor = None,
    q: Annotated[str | None, Query(description="Words that must all be in the title")] = None,
    min_price: Annotated[float | None, Query(alias="minPrice", ge=0, le=1_000_000)] = None,
    max_price: Annotated[float | None, Query(alias="maxPrice", ge=0, le=1_000_000)] = None,
    sort: Annotated[Sort, Query(description="newest, price_asc or price_desc")] = Sort.NEWEST,
    count: Annotated[bool, Query(description="Also say how many match (X-Total-Count)")] = False,
) -> list[TicketOut]:
    """A plain list, as the original returns (without parameters: the newest 50 for
    sale). `q`: every word in the title, any case; `minPrice`/`maxPrice`: a range,
    inclusive; `sort`; `count=true`: `X-Total-Count`, how many match. When more follow, the
    `X-Next-Cursor` header: pass it as `?cursor=` (with the same filter and sort) for
    the next page. A bad value is a 400 naming its parameter."""
    browse = Browse(
        words=browse_rules.words_of(q),
        min_cents=browse_rules.cents_of(min_price, "minPrice"),
        max_cents=browse_rules.cents_of(max_price, "maxPrice"),
        sort=sort,
        after=browse_rules.parse_cursor(cursor, sort),
    )
    docs = await repository.list_for_sale(db, browse, limit=limit + 1)
    docs = _one_page(docs, limit, response, browse.cursor_of)
    if count:  # asked for only: counting costs as much as the page (BENCHMARKS.md)
        response.headers[TOTAL_COUNT_HEADER] = str(await repository.count_for_sale(db, browse))
    return [repository.to_out(doc) for doc in docs]


@router.get(
    "/mine",
    response_model=list[MyTicketOut],
    response_model_exclude_none=True,
    summary="Your tickets, in every state, newest first",
    responses=error_responses(400, 401),
)
async def my_tickets(
    user: RequiredUser,
    db: DbDep,
    response: Response,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> list[MyTicketOut]:
    """What a seller tracks: each of their tickets with its `status` (available,
    reserved — with `reservedUntil`, when the buyer's order expires — or sold, at its
    `price`). Paged like the list."""
    before = browse_rules.parse_cursor(cursor, Sort.NEWEST)
    docs = await repository.list_of_seller(db, user.id, limit=limit + 1, before=before)
    docs = _one_page(docs, limit, response, lambda doc: str(doc["_id"]))
    return [repository.to_mine(doc) for doc in docs]


@router.get(
    "/{ticket_id}",
    response_model=TicketOut,
    summary="One ticket",
    responses=error_responses(404),
)
async def show_ticket(ticket_id: str, db: DbDep) -> ModelResponse:
    return ModelResponse(repository.to_out(await _find(db, ticket_id)))


@router.put(
    "/{ticket_id}",
    response_model=TicketOut,
    summary="Edit your ticket",
    responses=error_responses(400, 401, 403, 404, 409, 413, 429, 503),
)
async def update_ticket(
    ticket_id: str,
    body: TicketIn,
    user: LimitedWriter,
    db: DbDep,
    outbox: OutboxDep,
) -> ModelResponse:
    """Checks, in order: 401 not signed in, 400 invalid, 404, 400 sold, 400 reserved,
    403 not yours. The edit applies only if nobody changed the ticket meanwhile (else 409);
    `version` goes up by one and `ticket.updated` is published."""
    doc = await _find(db, ticket_id)
    if doc.get("sold"):
        raise BadRequestError("Cannot edit a sold ticket")
    if doc.get("orderId"):
        raise BadRequestError("Cannot edit a reserved ticket")
    if doc["userId"] != user.id:
        raise ForbiddenError("You do not own this ticket")
    changes = {"title": body.title, "priceCents": body.price_cents}
    return ModelResponse(repository.to_out(await repository.update(outbox, doc, changes)))
