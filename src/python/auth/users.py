"""The users collection: unique normalised emails, argon2 hashes, never exposed."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth.schemas import UserOut
from ticketing_common.errors import BadRequestError

USERS = "users"
INDEXES = {USERS: [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")]}


class EmailInUse(BadRequestError):
    default_message = "Email in use"


async def find_by_email(db: AsyncDatabase[Any], email: str) -> dict[str, Any] | None:
    return await db[USERS].find_one({"email": email})


async def create_user(db: AsyncDatabase[Any], email: str, password_hash: str) -> UserOut:
    """Insert a user; the unique index settles a race between two signups (one 400)."""
    try:
        result = await db[USERS].insert_one(
            {"email": email, "password": password_hash, "version": 0}
        )
    except DuplicateKeyError:
        raise EmailInUse() from None
    return UserOut(id=str(result.inserted_id), email=email)


async def replace_hash(db: AsyncDatabase[Any], user: dict[str, Any], new_hash: str) -> None:
    # Conditional on the old hash: a concurrent password change is never overwritten.
    await db[USERS].update_one(
        {"_id": user["_id"], "password": user["password"]},
        {"$set": {"password": new_hash}, "$inc": {"version": 1}},
    )
