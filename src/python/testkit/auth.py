"""Sign-in for tests without the auth service — the original's `global.signin()`."""

from __future__ import annotations

import base64
import json
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


def _cookie_of(data: object) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


_NESTED = '{"a":' * 1000 + "1" + "}" * 1000  # the reported crash: 1.3 kB, 500 before
CRAFTED_SESSION_COOKIES = {
    "nested JSON": base64.b64encode(_NESTED.encode()).decode(),
    "nested JSON as the jwt": base64.b64encode(('{"jwt": ' + _NESTED + "}").encode()).decode(),
    "oversized": "A" * 100_000,
    "not base64": "%%%not-base64%%%",
    "jwt a number": _cookie_of({"jwt": 5}),
    "jwt an object": _cookie_of({"jwt": {"alg": "none"}}),
    "a list": _cookie_of(["jwt"]),
    "forged jwt": _cookie_of({"jwt": "eyJhbGciOiJub25lIn0.eyJpZCI6IngifQ."}),
}
"""`session` cookie values an attacker might craft: each must read as signed out."""
