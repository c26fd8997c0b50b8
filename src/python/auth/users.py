"""The users collection: unique normalised emails, argon2 hashes, never exposed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.mongo import parse_object_id

USERS = "users"
SIGNIN_FAILURES = "signin_failures"  # {_id: email, count, since}
INDEXES = {
    USERS: [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")],
    # old failure counters are deleted by Mongo's TTL monitor (the code does not rely on it)
    SIGNIN_FAILURES: [IndexModel([("since", ASCENDING)], expireAfterSeconds=86_400)],
}


class EmailTaken(Exception):
    """An account with this email exists (the unique index said so)."""


async def exists(db: AsyncDatabase[Any], user_id: str) -> bool:
    oid = parse_object_id(user_id)
    return oid is not None and await db[USERS].count_documents({"_id": oid}, limit=1) == 1


async def reserve_signin_attempt(
    db: AsyncDatabase[Any], email: str, *, limit: int, window: timedelta
) -> int | None:
    """Count one sign-in attempt for `email` BEFORE its password is verified, in one
    atomic write that only succeeds while fewer than `limit` are counted in the window.
    So however many attempts arrive at once, at most `limit` are ever verified. Returns
    None when the attempt may go on, else the seconds until the window ends.
    A success clears the count (`clear_failures`), so only failures accumulate."""
    now = datetime.now(UTC)
    # A counter whose window has passed starts again.
    await db[SIGNIN_FAILURES].delete_one({"_id": email, "since": {"$lt": now - window}})
    try:
        await db[SIGNIN_FAILURES].update_one(
            {"_id": email, "count": {"$lt": limit}},
            {"$inc": {"count": 1}, "$setOnInsert": {"since": now}},
            upsert=True,
        )
    except DuplicateKeyError:
        # The counter exists but is at the limit (the filter missed, the upsert collided).
        record = await db[SIGNIN_FAILURES].find_one({"_id": email})
        since = record["since"] if record else now
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return max(1, int((since + window - now).total_seconds()) + 1)
    return None


async def clear_failures(db: AsyncDatabase[Any], email: str) -> None:
    await db[SIGNIN_FAILURES].delete_one({"_id": email})


async def find_by_email(db: AsyncDatabase[Any], email: str) -> dict[str, Any] | None:
    return await db[USERS].find_one({"email": email})


async def create_user(db: AsyncDatabase[Any], email: str, password_hash: str) -> str:
    """Insert a user and return its id; the unique index settles a race between two
    signups for one email (the second raises EmailTaken)."""
    try:
        result = await db[USERS].insert_one(
            {"email": email, "password": password_hash, "version": 0}
        )
    except DuplicateKeyError:
        raise EmailTaken() from None
    return str(result.inserted_id)


async def replace_hash(db: AsyncDatabase[Any], user: dict[str, Any], new_hash: str) -> None:
    # Conditional on the old hash: a concurrent password change is never overwritten.
    await db[USERS].update_one(
        {"_id": user["_id"], "password": user["password"]},
        {"$set": {"password": new_hash}, "$inc": {"version": 1}},
    )
