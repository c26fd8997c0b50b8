"""Finding a ticket among thousands: `GET /api/tickets?q=&minPrice=&maxPrice=&sort=&cursor=`.

The filter (tickets for sale; every word of `q` in the title, case-insensitive; a price
range) and one sort order with a cursor that continues it exactly where the previous
page ended — for each sort, also while tickets are added or sold meanwhile:

  newest       _id descending               cursor: the last ticket's id
  price_asc    priceCents, then _id, up     cursor: "<cents>_<id>" of the last ticket
  price_desc   priceCents, then _id, down   cursor: the same

Indexes (repository.INDEXES): (orderId, _id) serves newest, (orderId, priceCents, _id)
both price orders and the price range. Words are matched by a regular expression
(SecantusDB, the local database, has no text index): a scan of the tickets for sale,
measured in BENCHMARKS.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bson import ObjectId

from common.errors import BadRequestError
from common.mongo import parse_object_id

MAX_WORDS = 8
MAX_QUERY_LENGTH = 100


class Sort(StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"


SORT_KEYS = {
    Sort.NEWEST: [("_id", -1)],
    Sort.PRICE_ASC: [("priceCents", 1), ("_id", 1)],
    Sort.PRICE_DESC: [("priceCents", -1), ("_id", -1)],
}


@dataclass(frozen=True)
class Browse:
    words: tuple[str, ...] = ()
    min_cents: int | None = None
    max_cents: int | None = None
    sort: Sort = Sort.NEWEST
    after: tuple[int, ObjectId] | ObjectId | None = None  # where the previous page ended

    def query(self) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = [{"orderId": None}]
        clauses += [{"title": {"$regex": re.escape(w), "$options": "i"}} for w in self.words]
        price: dict[str, int] = {}
        if self.min_cents is not None:
            price["$gte"] = self.min_cents
        if self.max_cents is not None:
            price["$lte"] = self.max_cents
        if price:
            clauses.append({"priceCents": price})
        if self.after is not None:
            clauses.append(self._after_clause())
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def count_query(self) -> dict[str, Any]:
        """The filter alone: how many tickets match, on every page."""
        return Browse(self.words, self.min_cents, self.max_cents, self.sort).query()

    def _after_clause(self) -> dict[str, Any]:
        if self.sort is Sort.NEWEST:
            return {"_id": {"$lt": self.after}}
        cents, last_id = self.after  # type: ignore[misc]
        beyond = "$gt" if self.sort is Sort.PRICE_ASC else "$lt"
        return {
            "$or": [
                {"priceCents": {beyond: cents}},
                {"priceCents": cents, "_id": {beyond: last_id}},
            ]
        }

    def cursor_of(self, doc: dict[str, Any]) -> str:
        if self.sort is Sort.NEWEST:
            return str(doc["_id"])
        return f"{doc['priceCents']}_{doc['_id']}"


def words_of(q: str | None) -> tuple[str, ...]:
    if q is None:
        return ()
    if len(q) > MAX_QUERY_LENGTH:
        raise BadRequestError(f"Q must be at most {MAX_QUERY_LENGTH} characters", field="q")
    words = tuple(dict.fromkeys(q.lower().split()))
    if len(words) > MAX_WORDS:
        raise BadRequestError(f"Q must have at most {MAX_WORDS} words", field="q")
    return words


def cents_of(price: float | None, field: str) -> int | None:
    if price is None:
        return None
    cents = round(price * 100)
    if abs(price * 100 - cents) > 1e-6:
        name = field[0].upper() + field[1:]  # as the other messages name their field
        raise BadRequestError(f"{name} must have at most 2 decimal places", field=field)
    return cents


def parse_cursor(cursor: str | None, sort: Sort) -> tuple[int, ObjectId] | ObjectId | None:
    """The cursor a page of this sort gave, or 400 `Invalid cursor`."""
    if cursor is None:
        return None
    if sort is Sort.NEWEST:
        after = parse_object_id(cursor)
    else:
        cents, _, last_id = cursor.partition("_")
        oid = parse_object_id(last_id)
        after = (int(cents), oid) if cents.isdigit() and oid is not None else None
    if after is None:
        raise BadRequestError("Invalid cursor", field="cursor")
    return after
