"""FastAPI dependencies for what a route needs of its service (its context): settings,
database, outbox, the signed-in user, the user's write budget, an idempotency key.

Routes ask for these instead of importing globals, so tests can override them
(`app.dependency_overrides[get_outbox] = lambda: fake`), like the original's `__mocks__`.
They are `async def` on purpose: FastAPI runs a plain `def` dependency in a thread
pool, a hop per dependency per request (measured: ~5% of the tickets service's time).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pymongo.asynchronous.database import AsyncDatabase

from common.auth import CurrentUser, token_from_request, verify_jwt
from common.context import DataContext, context_of
from common.errors import BadRequestError, NotAuthorizedError
from common.limits import USER_WRITES, TooManyWrites, reserve, user_write_windows
from common.outbox import Outbox
from common.settings import ProcessSettings


def data_context(request: Request) -> DataContext:
    """The context of a service that keeps data (the routes below need one)."""
    context = context_of(request)
    if not isinstance(context, DataContext):
        raise TypeError(f"the {context.name} service keeps no data")
    return context


async def get_settings(request: Request) -> ProcessSettings:
    """The service's own settings; a service types it as its class:
    `OrdersSettingsDep = Annotated[OrdersSettings, Depends(get_settings)]`."""
    return context_of(request).settings


async def get_db(request: Request) -> AsyncDatabase[dict[str, Any]]:
    return data_context(request).db


async def get_outbox(request: Request) -> Outbox:
    return data_context(request).outbox


DbDep = Annotated[AsyncDatabase[dict[str, Any]], Depends(get_db)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]


async def current_user(request: Request) -> CurrentUser | None:
    """The signed-in user, or None (absent or invalid credentials, or a token signed
    out: `common.revocations`). A service that keeps no data checks no sessions."""
    token = token_from_request(request)
    context = context_of(request)
    if token is None or not isinstance(context, DataContext):
        return None
    user = verify_jwt(token, context.jwt_key)
    if user is not None and context.revoked_sessions.is_revoked(user.jti, user.id, user.iat):
        return None
    return user


async def require_user(user: Annotated[CurrentUser | None, Depends(current_user)]) -> CurrentUser:
    """The signed-in user, or 401 Not authorized."""
    if user is None:
        raise NotAuthorizedError()
    return user


OptionalUser = Annotated[CurrentUser | None, Depends(current_user)]
RequiredUser = Annotated[CurrentUser, Depends(require_user)]


async def limited_writer(request: Request, user: RequiredUser) -> CurrentUser:
    """The signed-in user, after counting one write against their budgets (429 with
    `Retry-After` past either). A refused or invalid request counts too: the budget
    limits what a client sends, not what succeeds."""
    context = data_context(request)
    windows = user_write_windows(context.settings)
    wait = await reserve(context.db[USER_WRITES], user.id, windows)
    if wait is not None:
        raise TooManyWrites(retry_after=wait)
    return user


LimitedWriter = Annotated[CurrentUser, Depends(limited_writer)]


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
