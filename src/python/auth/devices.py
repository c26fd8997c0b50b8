"""Device cookies (OWASP's defence against lock-out by a stranger).

A browser that signed up or signed in to an account gets a signed, long-lived,
HttpOnly `device` cookie naming that account (its email) and the device (a random
id). Failed sign-ins from a browser presenting a valid device cookie *for that
account* are limited on that device alone; every other client shares the account's
limit and the per-address limits. So a stranger who spends the account's budget of
wrong guesses does not stop its owner's browser — and the owner's own wrong guesses
lock that device only. A device cookie for another account, expired or forged, counts
for nothing.

The cookie is a JWT with audience `ticketing-device`, signed with the JWT key: no
service takes it for a session (a session token has no audience), and it is sent to
auth's routes only (`Path=/api/users`).
"""

from __future__ import annotations

import secrets
import time

import jwt
from fastapi import Request, Response

from common.auth import JWT_ALGORITHM, MAX_TOKEN_LENGTH, append_cookie

DEVICE_COOKIE = "device"
AUDIENCE = "ticketing-device"
COOKIE_PATH = "/api/users"


def trusted_device(request: Request, email: str, key: str) -> str | None:
    """The id of the device this request's cookie names, if the cookie is valid and was
    issued to the account `email`; else None (an untrusted client)."""
    token = request.cookies.get(DEVICE_COOKIE)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["aud", "exp", "sub", "did"]},
        )
    except jwt.PyJWTError:
        return None
    device = claims.get("did")
    if claims.get("sub") != email or not isinstance(device, str) or not device:
        return None
    return device[:64]


def set_device_cookie(
    response: Response, email: str, key: str, *, device: str | None, secure: bool, days: int
) -> None:
    """(Re)issue the device cookie for `email`, keeping the device's id if it has one."""
    lifetime = days * 86_400
    claims = {
        "aud": AUDIENCE,
        "sub": email,
        "did": device or secrets.token_urlsafe(16),
        "exp": int(time.time()) + lifetime,
    }
    token = jwt.encode(claims, key, algorithm=JWT_ALGORITHM)
    append_cookie(
        response, token, secure=secure, max_age=lifetime, name=DEVICE_COOKIE, path=COOKIE_PATH
    )
