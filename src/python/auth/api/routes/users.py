"""/api/users: the original app's routes, statuses and messages."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status

from auth import users
from auth.api.deps import AuthSettingsDep, PasswordsDep
from auth.core.config import AuthSettings
from auth.schemas import CurrentUserOut, SigninRequest, SignupRequest, UserOut
from common.auth import (
    OptionalUser,
    clear_session_cookie,
    set_session_cookie,
    sign_jwt,
)
from common.deps import DbDep
from common.errors import BadRequestError, TooManyRequestsError, error_responses

router = APIRouter(prefix="/api/users", tags=["users"])


class EmailInUse(BadRequestError):
    default_message = "Email in use"


class InvalidCredentials(BadRequestError):
    default_message = "Invalid credentials"


class TooManyFailedSignins(TooManyRequestsError):
    default_message = "Too many failed sign-ins for this email; try again later"


def _start_session(response: Response, user: UserOut, settings: AuthSettings) -> None:
    lifetime = timedelta(seconds=settings.jwt_lifetime_seconds)
    token = sign_jwt(user.id, user.email, settings.jwt_key.get_secret_value(), lifetime)
    set_session_cookie(
        response, token, secure=settings.cookie_secure, max_age=settings.jwt_lifetime_seconds
    )


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    summary="Create an account and sign in",
    responses=error_responses(400, 413),
)
async def signup(
    body: SignupRequest,
    response: Response,
    db: DbDep,
    passwords: PasswordsDep,
    settings: AuthSettingsDep,
) -> UserOut:
    """400 `Email must be valid`, `Password must be between 4 and 20 characters`,
    `Email in use`. Sets the `session` cookie."""
    if await users.find_by_email(db, body.email):
        raise EmailInUse()
    try:
        user_id = await users.create_user(db, body.email, await passwords.hash(body.password))
    except users.EmailTaken:
        raise EmailInUse() from None
    user = UserOut(id=user_id, email=body.email)
    _start_session(response, user, settings)
    return user


@router.post(
    "/signin",
    response_model=UserOut,
    summary="Sign in",
    responses=error_responses(400, 413, 429),
)
async def signin(
    body: SigninRequest,
    response: Response,
    db: DbDep,
    passwords: PasswordsDep,
    settings: AuthSettingsDep,
) -> UserOut:
    """400 `Invalid credentials` for an unknown email and a wrong password alike (the
    same work is done for both). After `SIGNIN_MAX_FAILURES` failures for one email
    within the window, 429 with `Retry-After` — for known and unknown emails alike;
    each attempt is counted before its password is checked, so simultaneous guesses
    cannot slip past the limit. Sets the cookie."""
    window = timedelta(seconds=settings.signin_failure_window_seconds)
    wait = await users.reserve_signin_attempt(
        db, body.email, limit=settings.signin_max_failures, window=window
    )
    if wait is not None:
        raise TooManyFailedSignins(retry_after=wait)
    existing = await users.find_by_email(db, body.email)
    check = await passwords.check(existing["password"] if existing else None, body.password)
    if existing is None or not check.ok:
        raise InvalidCredentials()  # the attempt stays counted
    await users.clear_failures(db, body.email)
    if check.new_hash:
        await users.replace_hash(db, existing, check.new_hash)
    user = UserOut(id=str(existing["_id"]), email=existing["email"])
    _start_session(response, user, settings)
    return user


@router.post("/signout", summary="Sign out (clears the session cookie)")
async def signout(response: Response, settings: AuthSettingsDep) -> dict[str, str]:
    clear_session_cookie(response, secure=settings.cookie_secure)
    return {}


@router.get("/currentuser", response_model=CurrentUserOut, summary="Who is signed in")
async def current_user(user: OptionalUser, db: DbDep) -> CurrentUserOut:
    """`{"currentUser": {id, email, iat, exp}}`, or `{"currentUser": null}` — also for
    a valid token of a user who no longer exists."""
    if user is not None and not await users.exists(db, user.id):
        user = None
    return CurrentUserOut(currentUser=user)
