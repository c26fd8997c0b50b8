"""Limits on how often something may happen: counted in the database, atomic under
concurrency (however many requests arrive at once, at most `limit` get through), and
one database write per attempt however many windows count it.

- `reserve`: one document per key holding a counter per window
  (`{_id: key, <window>: {count, end}, expiresAt}`); auth counts sign-in failures and
  attempts per address with it.
- `user_write_windows`: a signed-in user's per-minute and per-day write budgets
  (`USER_WRITES_PER_MINUTE`, `USER_WRITES_PER_DAY`), counted under `USER_WRITES` by
  the route dependency `common.deps.LimitedWriter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from common.errors import TooManyRequestsError
from common.settings import ServiceSettings

USER_WRITES = "user_writes"  # {_id: "<user id>", minute: {count, end}, day: {...}, expiresAt}
# Old counters are deleted by Mongo's TTL monitor (the code does not rely on it).
EXPIRES = IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="limit_expires")
LIMIT_INDEXES = {USER_WRITES: [EXPIRES]}


@dataclass(frozen=True)
class Window:
    """At most `limit` attempts per `length`, counted from the first one (a fixed
    window that starts again once it has passed)."""

    name: str
    limit: int
    length: timedelta


class TooManyWrites(TooManyRequestsError):
    default_message = "Too many changes; try again later"


async def reserve(
    collection: AsyncCollection[Any], key: str, windows: Sequence[Window]
) -> int | None:
    """Count one attempt under `key` in every window BEFORE the work it guards, in one
    atomic write: an update of the key's document by `_id` with an aggregation pipeline
    that counts only while every window is open (starting each passed window again) and
    else leaves the document as it was. Whether it counted is the write's own answer
    (modified or inserted), so the common case reads nothing. Returns None when the
    attempt may go on, else the seconds until it could.

    The filter is `_id` alone on purpose: SecantusDB (the local and test database) scans
    the whole collection for a filter with `$expr` or `$or` (measured: 12 ms a write
    with 2,000 counters, against about 1 ms by `_id`), and so does find_one_and_update;
    and it evaluates a pipeline's expressions slowly, so they are kept few (a window
    stores its `end`, so "passed" is one comparison: 0.7 ms a write, a plain update's
    0.45)."""
    if not windows:
        return None
    now = datetime.now(UTC)
    is_open = {"$and": [_open(w, now) for w in windows]}
    counted = {w.name: {"$cond": [is_open, _counted(w, now), f"${w.name}"]} for w in windows}
    expiry = {"expiresAt": {"$cond": [is_open, _expires_at(windows, now), "$expiresAt"]}}
    update = [{"$set": {**counted, **expiry}}]
    try:
        result = await collection.update_one({"_id": key}, update, upsert=True)
    except DuplicateKeyError:  # two first attempts at once: the other one inserted it
        result = await collection.update_one({"_id": key}, update, upsert=True)
    if result.upserted_id is not None or result.modified_count == 1:
        return None
    # Refused: a window is full (the document is unchanged).
    return _seconds_until_open(await collection.find_one({"_id": key}), windows, now)


def _passed(window: Window, now: datetime) -> dict[str, Any]:
    """The window has ended, or has not started (a missing `end` compares as null,
    below any date)."""
    return {"$lte": [f"${window.name}.end", now]}


def _open(window: Window, now: datetime) -> dict[str, Any]:
    """One more attempt fits in this window."""
    return {"$or": [_passed(window, now), {"$lt": [f"${window.name}.count", window.limit]}]}


def _counted(window: Window, now: datetime) -> dict[str, Any]:
    """The window's counter after this attempt: 1 in a new window, else one more."""
    name = window.name
    return {
        "$cond": [
            _passed(window, now),
            {"count": 1, "end": now + window.length},
            {"count": {"$add": [f"${name}.count", 1]}, "end": f"${name}.end"},
        ]
    }


def _expires_at(windows: Sequence[Window], now: datetime) -> datetime:
    """When the document is of no more use: its longest window, counted from now."""
    return now + max(w.length for w in windows)


def _seconds_until_open(
    record: dict[str, Any] | None, windows: Sequence[Window], now: datetime
) -> int:
    waits = [1]
    for window in windows:
        counter = (record or {}).get(window.name) or {}
        end = counter.get("end")
        if end is None or counter.get("count", 0) < window.limit:
            continue
        waits.append(int((end - now).total_seconds()) + 1)
    return max(waits)


async def clear(collection: AsyncCollection[Any], key: str) -> None:
    await collection.delete_one({"_id": key})


def user_write_windows(settings: ServiceSettings) -> list[Window]:
    """The per-user budgets in force (a limit of 0 is no limit)."""
    windows = [
        Window("minute", settings.user_writes_per_minute, timedelta(minutes=1)),
        Window("day", settings.user_writes_per_day, timedelta(days=1)),
    ]
    return [w for w in windows if w.limit > 0]
