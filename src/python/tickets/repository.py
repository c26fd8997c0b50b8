"""The tickets collection. Documents: {_id, title, priceCents, userId, version, orderId,
createdAt}; `version` starts at 0 and every update bumps it (optimistic concurrency)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from ticketing_common.mongo import update_versioned
from tickets.schemas import TicketIn, TicketOut, cents_to_price

TICKETS = "tickets"
INDEXES = {TICKETS: [IndexModel([("orderId", 1), ("_id", DESCENDING)], name="for_sale_newest")]}

Doc = dict[str, Any]


def to_out(doc: Doc) -> TicketOut:
    return TicketOut(
        id=str(doc["_id"]),
        title=doc["title"],
        price=cents_to_price(doc["priceCents"]),
        userId=doc["userId"],
        version=doc["version"],
        orderId=doc.get("orderId"),
    )


def event_payload(doc: Doc) -> dict[str, Any]:
    """ticket.created / ticket.updated payload: {id, version, title, price, userId, orderId?}."""
    return to_out(doc).model_dump(exclude_none=True)


def new_document(title: str, price_cents: int, user_id: str) -> Doc:
    """A ticket for sale, at version 0."""
    return {
        "_id": ObjectId(),
        "title": title,
        "priceCents": price_cents,
        "userId": user_id,
        "version": 0,
        "orderId": None,
        "createdAt": datetime.now(UTC),
    }


async def insert(
    db: AsyncDatabase[Any], ticket: TicketIn, user_id: str, session: AsyncClientSession
) -> Doc:
    doc = new_document(ticket.title, ticket.price_cents, user_id)
    await db[TICKETS].insert_one(doc, session=session)
    return doc


async def get(db: AsyncDatabase[Any], ticket_id: ObjectId) -> Doc | None:
    return await db[TICKETS].find_one({"_id": ticket_id})


async def list_for_sale(
    db: AsyncDatabase[Any], *, limit: int, before: ObjectId | None = None
) -> list[Doc]:
    """Unreserved tickets, newest first; `before`: continue after that ticket id."""
    query: Doc = {"orderId": None}
    if before is not None:
        query["_id"] = {"$lt": before}
    return await db[TICKETS].find(query).sort("_id", DESCENDING).limit(limit).to_list()


async def update(
    db: AsyncDatabase[Any], doc: Doc, ticket: TicketIn, session: AsyncClientSession
) -> Doc:
    """Apply the edit if nobody changed the ticket since `doc` was read (else 409)."""
    return await update_versioned(
        db[TICKETS],
        doc["_id"],
        doc["version"],
        {"title": ticket.title, "priceCents": ticket.price_cents},
        session=session,
    )
