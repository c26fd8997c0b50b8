"""Authentication shared by every service: JWT and the `session` cookie (the route
dependencies that read the signed-in user: `common.deps`).

Any service reads the current user from the request alone (no call to the auth
service): the `session` cookie — base64 of JSON `{"jwt": "<token>"}`, as the original
app's cookie-session writes it — or an `Authorization: Bearer <token>` header.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from datetime import timedelta

import jwt
from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SESSION_COOKIE = "session"
JWT_ALGORITHM = "HS256"
DEFAULT_TOKEN_LIFETIME = timedelta(days=1)
# Clock skew allowed between the node that signed a token and the one checking it.
JWT_LEEWAY_SECONDS = 10
# A real token is ~250 bytes, its cookie ~350: anything far longer is not one (and is
# never parsed — a crafted value must not cost more than a length check).
MAX_TOKEN_LENGTH = 4096


class CurrentUser(BaseModel):
    """The JWT payload: who is signed in, and when the token was issued / expires.
    `jti` names the token, so sign-out can revoke it (not shown in responses). Frozen:
    one verified token's user is shared by its requests (`verify_jwt`)."""

    model_config = ConfigDict(frozen=True)

    id: str
    email: str
    iat: int
    exp: int
    jti: str = Field(min_length=1, max_length=64, exclude=True)


def sign_jwt(
    user_id: str,
    email: str,
    key: str,
    lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    not_before: int = 0,
) -> str:
    """`not_before`: the earliest `iat` (epoch seconds) — after "sign out everywhere"
    within this second, the next second's, so the new token is not refused with the old."""
    now = max(int(time.time()), not_before)
    payload = {
        "id": user_id,
        "email": email,
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(payload, key, algorithm=JWT_ALGORITHM)


VERIFIED_TOKENS_KEPT = 4096
_verified: dict[tuple[str, str], CurrentUser] = {}
"""(token, key) -> its user: tokens whose signature and claims were checked. A client
sends the same token with every request; checking it again cost ~7 % of a create's
CPU. Only expiry can change, so a hit re-checks that."""


def verify_jwt(token: str, key: str) -> CurrentUser | None:
    """The token's user, or None if it is forged, expired, malformed or not HS256 —
    never an exception, whatever the value (wrong type, huge, nested ten thousand deep)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    user = _verified.get((token, key))
    if user is not None:
        if time.time() <= user.exp + JWT_LEEWAY_SECONDS:
            return user
        del _verified[token, key]
        return None
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "iat", "jti"]},
            leeway=JWT_LEEWAY_SECONDS,
        )
        user = CurrentUser.model_validate(payload)
    except (jwt.InvalidTokenError, ValidationError, ValueError, TypeError, RecursionError):
        return None
    if len(_verified) >= VERIFIED_TOKENS_KEPT:
        _verified.clear()  # a bound, not a policy: the next requests verify again
    _verified[token, key] = user
    return user


def encode_session(token: str) -> str:
    return base64.b64encode(json.dumps({"jwt": token}).encode()).decode()


def decode_session(value: str) -> str | None:
    """The JWT inside a `session` cookie value, or None if the value is not one (never
    an exception: garbage, oversized, deeply nested or wrong-typed values alike)."""
    if not isinstance(value, str) or len(value) > MAX_TOKEN_LENGTH * 2:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=False))
    except (binascii.Error, ValueError, RecursionError):
        return None
    token = data.get("jwt") if isinstance(data, dict) else None
    return token if isinstance(token, str) and token else None


def set_session_cookie(response: Response, token: str, *, secure: bool, max_age: int) -> None:
    append_cookie(response, encode_session(token), secure=secure, max_age=max_age)


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    append_cookie(response, "", secure=secure, max_age=0)


def append_cookie(
    response: Response,
    value: str,
    *,
    secure: bool,
    max_age: int,
    name: str = SESSION_COOKIE,
    path: str = "/",
) -> None:
    # Written by hand: Python's cookie writer wraps base64 values ("=" padding) in quotes,
    # which browsers keep as part of the value; the original app writes them bare.
    parts = [
        f"{name}={value}",
        f"Path={path}",
        f"Max-Age={max_age}",
        "HttpOnly",
        "SameSite=lax",
    ]
    if max_age == 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if secure:
        parts.append("Secure")
    response.headers.append("set-cookie", "; ".join(parts))


def token_from_request(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    return decode_session(cookie) if cookie else None
