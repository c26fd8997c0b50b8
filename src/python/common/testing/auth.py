"""Sign-in for tests without the auth service — the seed's `global.signin()`."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from common.auth import SESSION_COOKIE, encode_session, sign_jwt

TEST_JWT_KEY = "test-only-jwt-key-never-deployed-0123456789"


def session_cookie(
    jwt_key: str = TEST_JWT_KEY,
    *,
    user_id: str | None = None,
    email: str = "test@test.com",
    lifetime: timedelta = timedelta(hours=1),
) -> dict[str, str]:
    """Cookies of a signed-in user (a fresh id unless given): pass as `cookies=`."""
    token = sign_jwt(user_id or str(ObjectId()), email, jwt_key, lifetime)
    return {SESSION_COOKIE: encode_session(token)}
