"""The users collection: unique normalised emails, argon2 hashes, never exposed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common import limits
from common.auth import CurrentUser
from common.events import SessionRevokedEvent
from common.mongo import parse_object_id
from common.outbox import Outbox

USERS = "users"
# {_id: "<kind>:<who>", window: {count, end}, expiresAt} (`common.limits`): failed
# sign-ins per email ("signin:<email>"), attempts per client address ("signin-ip:<ip>",
# "signup-ip:<ip>")
ATTEMPTS = "attempts"
# {_id: jti, userId, expiresAt} of each signed-out token, with its session.revoked event
REVOKED_SESSIONS = "revoked_sessions"
INDEXES = {
    USERS: [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")],
    REVOKED_SESSIONS: [IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0)],
    ATTEMPTS: [limits.EXPIRES],
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
    """Count one attempt under `key` before the password check it guards (at most
    `limit` per window get through, however many arrive at once: `common.limits`).
    None: go on; else the seconds until the window ends. A successful sign-in clears
    its counter (`clear_attempts`), so only failures accumulate there."""
    return await limits.reserve(db[ATTEMPTS], key, [limits.Window("window", limit, window)])


async def clear_attempts(db: AsyncDatabase[Any], key: str) -> None:
    await limits.clear(db[ATTEMPTS], key)


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


async def revoke_session(
    outbox: Outbox, user: CurrentUser, everywhere: bool = False, lifetime: int = 0
) -> SessionRevokedEvent:
    """Record the sign-out of `user`'s token with its `session.revoked` event (the
    outbox publishes it; every service then refuses the token). Twice is once.
    `everywhere`: every token of the user issued before now (the next second: a token
    of this second may be one); `lifetime`, the tokens' longest, says until when
    services must remember that."""
    all_before = int(time.time()) + 1 if everywhere else None
    exp = max(user.exp, all_before + lifetime) if all_before is not None else user.exp
    event = SessionRevokedEvent(jti=user.jti, userId=user.id, exp=exp, allBefore=all_before)
    doc = {"_id": user.jti, "userId": user.id, "expiresAt": datetime.fromtimestamp(exp, UTC)}
    if all_before is not None:
        doc["allBefore"] = all_before
    try:
        await outbox.insert(REVOKED_SESSIONS, doc, event)
    except DuplicateKeyError:
        pass  # signed out already
    return event
