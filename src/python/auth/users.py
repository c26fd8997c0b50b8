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


async def recent_failures(db: AsyncDatabase[Any], email: str, window: timedelta) -> int:
    record = await db[SIGNIN_FAILURES].find_one({"_id": email})
    if record is None or record["since"] < datetime.now(UTC) - window:
        return 0
    return int(record["count"])


async def record_failure(db: AsyncDatabase[Any], email: str, window: timedelta) -> None:
    """Count a failed sign-in; a counter older than the window starts again at 1."""
    now = datetime.now(UTC)
    await db[SIGNIN_FAILURES].delete_one({"_id": email, "since": {"$lt": now - window}})
    await db[SIGNIN_FAILURES].update_one(
        {"_id": email}, {"$inc": {"count": 1}, "$setOnInsert": {"since": now}}, upsert=True
    )


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
