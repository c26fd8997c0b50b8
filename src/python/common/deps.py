"""FastAPI dependencies for what the app factory built (its `ServiceContext`).

Routes ask for these instead of importing globals, so tests can override them
(`app.dependency_overrides[get_outbox] = lambda: fake`), like the original's `__mocks__`.
They are `async def` on purpose: FastAPI runs a plain `def` dependency in a thread
pool, a hop per dependency per request (measured: ~5% of the tickets service's time).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pymongo.asynchronous.database import AsyncDatabase

from common.context import context_of
from common.errors import BadRequestError
from common.outbox import Outbox
from common.settings import ProcessSettings


async def get_settings(request: Request) -> ProcessSettings:
    """The service's own settings; a service types it as its class:
    `OrdersSettingsDep = Annotated[OrdersSettings, Depends(get_settings)]`."""
    return context_of(request).settings


async def get_db(request: Request) -> AsyncDatabase[dict[str, Any]]:
    return context_of(request).db


async def get_outbox(request: Request) -> Outbox:
    return context_of(request).outbox


DbDep = Annotated[AsyncDatabase[dict[str, Any]], Depends(get_db)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]


IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 200


async def get_idempotency_key(request: Request) -> str | None:
    """The request's `Idempotency-Key` header (the IETF draft's, as Stripe uses it): a
    client that cannot know whether a create went through (its connection died) sends
    it again with the same key, and gets the one thing it made instead of a second."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and key.isascii() and key.isprintable()):
        raise BadRequestError(
            f"{IDEMPOTENCY_KEY} must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters",
            IDEMPOTENCY_KEY,
        )
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(get_idempotency_key)]
