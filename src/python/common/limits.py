"""Limits on how often something may happen: counted in the database, atomic under
concurrency (however many requests arrive at once, at most `limit` get through).

- `reserve`: one fixed-window counter (`{_id: key, count, since}`); auth counts
  sign-in failures and attempts per address with it.
- `LimitedWriter`: a route's signed-in user, after counting one write against their
  per-minute and per-day budgets (`USER_WRITES_PER_MINUTE`, `USER_WRITES_PER_DAY`;
  429 with `Retry-After` past either). A refused or invalid request counts too: the
  budget limits what a client sends, not what succeeds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from common.auth import CurrentUser, RequiredUser
from common.context import context_of
from common.errors import TooManyRequestsError
from common.settings import ServiceSettings

USER_WRITES = "user_writes"  # {_id: "minute:<user id>" | "day:<user id>", count, since}
# old counters are deleted by Mongo's TTL monitor (the code does not rely on it)
LIMIT_INDEXES = {USER_WRITES: [IndexModel([("since", ASCENDING)], expireAfterSeconds=172_800)]}
WINDOWS = {"minute": timedelta(minutes=1), "day": timedelta(days=1)}


class TooManyWrites(TooManyRequestsError):
    default_message = "Too many changes; try again later"


async def reserve(
    collection: AsyncCollection[Any], key: str, *, limit: int, window: timedelta
) -> int | None:
    """Count one attempt under `key` BEFORE the work it guards, in one atomic write that
    only succeeds while fewer than `limit` are counted in the window. Returns None when
    the attempt may go on, else the seconds until the window ends."""
    now = datetime.now(UTC)
    # A counter whose window has passed starts again.
    await collection.delete_one({"_id": key, "since": {"$lt": now - window}})
    try:
        await collection.update_one(
            {"_id": key, "count": {"$lt": limit}},
            {"$inc": {"count": 1}, "$setOnInsert": {"since": now}},
            upsert=True,
        )
    except DuplicateKeyError:
        # The counter exists but is at the limit (the filter missed, the upsert collided).
        record = await collection.find_one({"_id": key})
        since = record["since"] if record else now
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return max(1, int((since + window - now).total_seconds()) + 1)
    return None


async def clear(collection: AsyncCollection[Any], key: str) -> None:
    await collection.delete_one({"_id": key})


async def limited_writer(request: Request, user: RequiredUser) -> CurrentUser:
    context = context_of(request)
    settings = context.settings
    assert isinstance(settings, ServiceSettings)
    budgets = {"minute": settings.user_writes_per_minute, "day": settings.user_writes_per_day}
    collection = context.db[USER_WRITES]
    for name, limit in budgets.items():  # the minute first: a refusal there spends no day
        if limit == 0:
            continue  # no limit
        wait = await reserve(collection, f"{name}:{user.id}", limit=limit, window=WINDOWS[name])
        if wait is not None:
            raise TooManyWrites(retry_after=wait)
    return user


LimitedWriter = Annotated[CurrentUser, Depends(limited_writer)]
