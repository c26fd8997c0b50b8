"""The users collection: unique normalised emails, argon2 hashes, never exposed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.auth import CurrentUser
from common.events import SessionRevokedEvent
from common.mongo import parse_object_id
from common.outbox import Outbox

USERS = "users"
# {_id: "<kind>:<who>", count, since}: failed sign-ins per email ("signin:<email>"),
# attempts per client address ("signin-ip:<ip>", "signup-ip:<ip>")
ATTEMPTS = "attempts"
# {_id: jti, userId, expiresAt} of each signed-out token, with its session.revoked event
REVOKED_SESSIONS = "revoked_sessions"
INDEXES = {
    USERS: [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")],
    REVOKED_SESSIONS: [IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0)],
    # old counters are deleted by Mongo's TTL monitor (the code does not rely on it)
    ATTEMPTS: [IndexModel([("since", ASCENDING)], expireAfterSeconds=86_400)],
}


class EmailTaken(Exception):
    """An account with this email exists (the unique index said so)."""


async def exists(db: AsyncDatabase[Any], user_id: str) -> bool:
    oid = parse_object_id(user_id)
    return oid is not None and await db[USERS].count_documents({"_id": oid}, limit=1) == 1


def signin_key(email: str) -> str:
    return f"signin:{email}"


async def reserve_attempt(
    db: AsyncDatabase[Any], key: str, *, limit: int, window: timedelta
) -> int | None:
    """Count one attempt under `key` BEFORE the work it guards (a password check), in
    one atomic write that only succeeds while fewer than `limit` are counted in the
    window. So however many attempts arrive at once, at most `limit` ever get through.
    Returns None when the attempt may go on, else the seconds until the window ends.
    (A successful sign-in clears its email's count: `clear_attempts`, so only failures
    accumulate there.)"""
    now = datetime.now(UTC)
    # A counter whose window has passed starts again.
    await db[ATTEMPTS].delete_one({"_id": key, "since": {"$lt": now - window}})
    try:
        await db[ATTEMPTS].update_one(
            {"_id": key, "count": {"$lt": limit}},
            {"$inc": {"count": 1}, "$setOnInsert": {"since": now}},
            upsert=True,
        )
    except DuplicateKeyError:
        # The counter exists but is at the limit (the filter missed, the upsert collided).
        record = await db[ATTEMPTS].find_one({"_id": key})
        since = record["since"] if record else now
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return max(1, int((since + window - now).total_seconds()) + 1)
    return None


async def clear_attempts(db: AsyncDatabase[Any], key: str) -> None:
    await db[ATTEMPTS].delete_one({"_id": key})


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


async def revoke_session(outbox: Outbox, user: CurrentUser) -> None:
    """Record the sign-out of `user`'s token with its `session.revoked` event (the
    outbox publishes it; every service then refuses the token). Twice is once."""
    event = SessionRevokedEvent(jti=user.jti, userId=user.id, exp=user.exp)
    doc = {"_id": user.jti, "userId": user.id, "expiresAt": datetime.fromtimestamp(user.exp, UTC)}
    try:
        await outbox.insert(REVOKED_SESSIONS, doc, event)
    except DuplicateKeyError:
        pass  # signed out already
