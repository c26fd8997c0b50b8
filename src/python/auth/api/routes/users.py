"""/api/users: the original app's routes, statuses and messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pymongo.asynchronous.database import AsyncDatabase

from auth import devices, users
from auth.api.deps import AuthSettingsDep, ClientAddressDep, PasswordsDep, revoked_sessions
from auth.core.config import AuthSettings
from auth.schemas import CurrentUserOut, SigninRequest, SignupRequest, UserOut
from common.auth import (
    clear_session_cookie,
    set_session_cookie,
    sign_jwt,
)
from common.deps import DbDep, OptionalUser, OutboxDep
from common.errors import BadRequestError, TooManyRequestsError, error_responses

router = APIRouter(prefix="/api/users", tags=["users"])


class EmailInUse(BadRequestError):
    default_message = "Email in use"


class InvalidCredentials(BadRequestError):
    default_message = "Invalid credentials"


class TooManyFailedSignins(TooManyRequestsError):
    default_message = "Too many failed sign-ins for this email; try again later"


class TooManyFromThisAddress(TooManyRequestsError):
    default_message = "Too many attempts from this address; try again later"


async def _limit_address(
    db: AsyncDatabase[Any], kind: str, address: str, limit: int, settings: AuthSettings
) -> None:
    """429 once `limit` attempts of `kind` came from `address` within the window."""
    if limit == 0:
        return
    window = timedelta(seconds=settings.ip_limit_window_seconds)
    wait = await users.reserve_attempt(db, f"{kind}-ip:{address}", limit=limit, window=window)
    if wait is not None:
        raise TooManyFromThisAddress(retry_after=wait)


def _start_session(
    request: Request,
    response: Response,
    user: UserOut,
    settings: AuthSettings,
    device: str | None = None,
) -> None:
    """The session cookie (a token issued after any "sign out everywhere" of the user),
    and the device cookie that makes this browser trusted for the account."""
    key = settings.jwt_key.get_secret_value()
    lifetime = timedelta(seconds=settings.jwt_lifetime_seconds)
    not_before = revoked_sessions(request).all_before(user.id)
    token = sign_jwt(user.id, user.email, key, lifetime, not_before)
    set_session_cookie(
        response, token, secure=settings.cookie_secure, max_age=settings.jwt_lifetime_seconds
    )
    devices.set_device_cookie(
        response,
        user.email,
        key,
        device=device,
        secure=settings.cookie_secure,
        days=settings.device_cookie_days,
    )


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    summary="Create an account and sign in",
    responses=error_responses(400, 413, 429),
)
async def signup(
    request: Request,
    body: SignupRequest,
    response: Response,
    db: DbDep,
    passwords: PasswordsDep,
    settings: AuthSettingsDep,
    address: ClientAddressDep,
) -> UserOut:
    """400 `Email must be valid`, `Password must be between 4 and 20 characters`,
    `Email in use`; 429 past `IP_SIGNUP_LIMIT` sign-ups from one address in the window.
    Sets the `session` cookie."""
    await _limit_address(db, "signup", address, settings.ip_signup_limit, settings)
    if await users.find_by_email(db, body.email):
        raise EmailInUse()
    try:
        user_id = await users.create_user(db, body.email, await passwords.hash(body.password))
    except users.EmailTaken:
        raise EmailInUse() from None
    user = UserOut(id=user_id, email=body.email)
    _start_session(request, response, user, settings)
    return user


@router.post(
    "/signin",
    response_model=UserOut,
    summary="Sign in",
    responses=error_responses(400, 413, 429),
)
async def signin(
    request: Request,
    body: SigninRequest,
    response: Response,
    db: DbDep,
    passwords: PasswordsDep,
    settings: AuthSettingsDep,
    address: ClientAddressDep,
) -> UserOut:
    """400 `Invalid credentials` for an unknown email and a wrong password alike (the
    same work is done for both). Failures are limited — `SIGNIN_MAX_FAILURES` per
    window, then 429 with `Retry-After`, counted before the password is checked so
    simultaneous guesses cannot slip past — per *device* for a browser whose device
    cookie names this account, else per email (for known and unknown emails alike),
    and then also `IP_SIGNIN_LIMIT` per address. So a stranger's guesses cannot lock the
    owner's browser out (`auth.devices`). Sets the session and device cookies."""
    key = settings.jwt_key.get_secret_value()
    device = devices.trusted_device(request, body.email, key)
    if device is None:
        await _limit_address(db, "signin", address, settings.ip_signin_limit, settings)
    attempts = f"signin-device:{device}" if device else users.signin_key(body.email)
    window = timedelta(seconds=settings.signin_failure_window_seconds)
    wait = await users.reserve_attempt(
        db, attempts, limit=settings.signin_max_failures, window=window
    )
    if wait is not None:
        raise TooManyFailedSignins(retry_after=wait)
    existing = await users.find_by_email(db, body.email)
    check = await passwords.check(existing["password"] if existing else None, body.password)
    if existing is None or not check.ok:
        raise InvalidCredentials()  # the attempt stays counted
    await users.clear_attempts(db, attempts)
    if check.new_hash:
        await users.replace_hash(db, existing, check.new_hash)
    user = UserOut(id=str(existing["_id"]), email=existing["email"])
    _start_session(request, response, user, settings, device)
    return user


@router.post("/signout", summary="Sign out: this session, or (everywhere=true) all of them")
async def signout(
    request: Request,
    response: Response,
    user: OptionalUser,
    outbox: OutboxDep,
    settings: AuthSettingsDep,
    everywhere: Annotated[bool, Query(description="End every session of this user")] = False,
) -> dict[str, str]:
    """Clears the `session` cookie and revokes its token: every service refuses it from
    now on (this replica at once, the others as the `session.revoked` event reaches
    them), even if a copy of it was kept. With `?everywhere=true`, every token issued to
    this user until now is refused too (other browsers, a stolen laptop): one event, a
    per-user "not before" instant. A sign-in in that same second is refused as well."""
    if user is not None:
        lifetime = settings.jwt_lifetime_seconds
        revocation = await users.revoke_session(outbox, user, everywhere, lifetime)
        revoked_sessions(request).apply(revocation)
    clear_session_cookie(response, secure=settings.cookie_secure)
    return {}


@router.get("/currentuser", response_model=CurrentUserOut, summary="Who is signed in")
async def current_user(user: OptionalUser, db: DbDep) -> CurrentUserOut:
    """`{"currentUser": {id, email, iat, exp}}`, or `{"currentUser": null}` — also for
    a valid token of a user who no longer exists."""
    if user is not None and not await users.exists(db, user.id):
        user = None
    return CurrentUserOut(currentUser=user)
