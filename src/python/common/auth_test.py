import base64
import json
import time
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from common import auth
from common.auth import (
    JWT_LEEWAY_SECONDS,
    decode_session,
    encode_session,
    sign_jwt,
    verify_jwt,
)
from common.context import DataContext
from common.deps import OptionalUser, RequiredUser
from common.errors import install_error_handlers
from common.settings import EventingSettings
from testkit.auth import session_cookie
from testkit.fakes import RecordingNats

KEY = "unit-test-key-of-at-least-32-bytes"


def test_jwt_round_trip_carries_id_email_iat_exp():
    token = sign_jwt("u1", "a@b.com", KEY, timedelta(minutes=5))
    user = verify_jwt(token, KEY)
    assert user is not None
    assert (user.id, user.email) == ("u1", "a@b.com")
    assert user.exp - user.iat == 300


def test_expired_token_is_rejected():
    token = sign_jwt("u1", "a@b.com", KEY, timedelta(seconds=-60))
    assert verify_jwt(token, KEY) is None


def test_a_token_verified_once_is_refused_once_it_expires(monkeypatch):
    token = sign_jwt("u1", "a@b.com", KEY, timedelta(seconds=30))
    first = verify_jwt(token, KEY)
    assert first is not None and verify_jwt(token, KEY) is first  # remembered
    assert verify_jwt(token, "another-key-of-at-least-32-bytes") is None  # per key
    later = time.time() + 30 + JWT_LEEWAY_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert verify_jwt(token, KEY) is None
    assert (token, KEY) not in auth._verified  # forgotten: from now on verified in full


def test_the_remembered_tokens_are_bounded(monkeypatch):
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_KEPT", 3)
    tokens = [sign_jwt(f"u{n}", "a@b.com", KEY) for n in range(10)]
    for token in tokens:
        assert verify_jwt(token, KEY) is not None
        assert len(auth._verified) <= 3
    assert all(verify_jwt(token, KEY).id == f"u{n}" for n, token in enumerate(tokens))


def test_token_signed_with_another_key_is_rejected():
    assert verify_jwt(sign_jwt("u1", "a@b.com", "another-key-of-at-least-32-bytes"), KEY) is None


def test_tampered_payload_is_rejected():
    header, payload, signature = sign_jwt("u1", "a@b.com", KEY).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["id"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert verify_jwt(f"{header}.{forged}.{signature}", KEY) is None


def test_alg_none_token_is_rejected():
    now = int(time.time())
    claims = {"id": "u1", "email": "a@b.com", "iat": now, "exp": now + 60}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert verify_jwt(unsigned, KEY) is None


def test_other_hmac_algorithm_is_rejected():
    now = int(time.time())
    claims = {"id": "u1", "email": "a@b.com", "iat": now, "exp": now + 60}
    assert verify_jwt(jwt.encode(claims, KEY, algorithm="HS512"), KEY) is None


def test_token_without_exp_is_rejected():
    token = jwt.encode({"id": "u1", "email": "a@b.com", "iat": int(time.time())}, KEY)
    assert verify_jwt(token, KEY) is None


def test_token_without_a_jti_is_rejected():
    """Every token names itself, so sign-out can revoke it (`common.revocations`)."""
    now = int(time.time())
    claims = {"id": "u1", "email": "a@b.com", "iat": now, "exp": now + 60}
    assert verify_jwt(jwt.encode(claims, KEY), KEY) is None


def test_token_missing_user_fields_is_rejected():
    now = int(time.time())
    assert verify_jwt(jwt.encode({"iat": now, "exp": now + 60}, KEY), KEY) is None


def test_session_cookie_matches_the_original_cookie_session_format():
    # cookie-session stores base64(JSON.stringify({jwt})); this value is what it writes.
    original = base64.b64encode(b'{"jwt":"abc.def.ghi"}').decode()
    assert decode_session(original) == "abc.def.ghi"
    assert decode_session(encode_session("abc.def.ghi")) == "abc.def.ghi"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "!!!not-base64!!!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b'["jwt"]').decode(),
        base64.b64encode(b'{"jwt": 5}').decode(),
        base64.b64encode(b'{"other": "x"}').decode(),
        base64.b64encode(b"\xff\xfe").decode(),
    ],
)
def test_garbage_session_cookie_decodes_to_none(value):
    assert decode_session(value) is None


NESTED = "[" * 1000 + "]" * 1000  # ~2 kB: past Python's JSON recursion limit
HS256_HEADER = '{"alg": "HS256", "typ": "JWT"}'


def _b64url(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    [
        base64.b64encode(NESTED.encode()).decode(),  # the reported crash: a 500 before
        base64.b64encode(('{"jwt": ' + NESTED + "}").encode()).decode(),
        "A" * 100_000,
        base64.b64encode(b'{"jwt": "' + b"a" * 50_000 + b'"}').decode(),
    ],
)
def test_crafted_session_cookies_decode_to_none_without_raising(value):
    token = decode_session(value)
    assert token is None or verify_jwt(token, KEY) is None


@pytest.mark.parametrize(
    "token",
    [
        f"{_b64url(NESTED)}.{_b64url('{}')}.sig",  # nested JSON in the JWT header
        f"{_b64url(HS256_HEADER)}.{_b64url(NESTED)}.sig",  # nested JSON in the payload
        "a.b.c" * 2000,
        "....",
        "\u0000\ud800",
    ],
)
def test_crafted_bearer_tokens_are_rejected_without_raising(token):
    assert verify_jwt(token, KEY) is None


def test_clock_skew_between_nodes_is_tolerated_within_the_leeway():
    now = int(time.time())
    ahead = {"id": "u1", "email": "a@b.com", "jti": "t1", "iat": now + 5, "exp": now + 60}
    assert verify_jwt(jwt.encode(ahead, KEY), KEY) is not None
    just_expired = {"id": "u1", "email": "a@b.com", "jti": "t1", "iat": now - 60, "exp": now - 3}
    assert verify_jwt(jwt.encode(just_expired, KEY), KEY) is not None
    far_ahead = {"id": "u1", "email": "a@b.com", "jti": "t1", "iat": now + 120, "exp": now + 600}
    assert verify_jwt(jwt.encode(far_ahead, KEY), KEY) is None


def _auth_app() -> FastAPI:
    app = FastAPI()
    settings = EventingSettings(
        mongo_uri="mongodb://127.0.0.1:1", jwt_key=KEY, nats_url="nats://127.0.0.1:1"
    )  # (never connected: the sessions are checked in memory)
    app.state.context = DataContext(
        name="demo", settings=settings, database="demo", nats=RecordingNats()  # type: ignore[arg-type]
    )
    install_error_handlers(app)

    @app.get("/whoami")
    async def whoami(user: OptionalUser) -> dict:
        return {"currentUser": user.model_dump() if user else None}

    @app.get("/private")
    async def private(user: RequiredUser) -> dict:
        return {"id": user.id}

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=_auth_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_current_user_is_null_without_credentials(client):
    assert (await client.get("/whoami")).json() == {"currentUser": None}


async def test_current_user_from_session_cookie(client):
    response = await client.get("/whoami", cookies=session_cookie(KEY, user_id="u7", email="x@y.z"))
    assert response.json()["currentUser"]["id"] == "u7"
    assert response.json()["currentUser"]["email"] == "x@y.z"


async def test_current_user_from_bearer_token(client):
    token = sign_jwt("u8", "b@c.d", KEY)
    response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.json()["currentUser"]["id"] == "u8"


async def test_invalid_cookie_means_no_user_not_an_error(client):
    response = await client.get("/whoami", cookies={"session": "garbage"})
    assert response.status_code == 200
    assert response.json() == {"currentUser": None}


async def test_require_user_answers_401_in_the_error_shape(client):
    response = await client.get("/private")
    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": "Not authorized"}]}


async def test_require_user_rejects_an_expired_cookie(client):
    expired = session_cookie(KEY, lifetime=timedelta(seconds=-60))
    assert (await client.get("/private", cookies=expired)).status_code == 401


async def test_require_user_passes_with_a_valid_cookie(client):
    response = await client.get("/private", cookies=session_cookie(KEY, user_id="u9"))
    assert response.status_code == 200
    assert response.json() == {"id": "u9"}


CRAFTED_CREDENTIALS = [
    {"cookies": {"session": base64.b64encode(NESTED.encode()).decode()}},
    {"headers": {"Authorization": f"Bearer {_b64url(NESTED)}.{_b64url('{}')}.x"}},
    {"headers": {"Authorization": "Bearer " + "x" * 20_000}},
]


@pytest.mark.parametrize("credentials", CRAFTED_CREDENTIALS)
async def test_crafted_credentials_are_anonymous_never_a_500(client, credentials):
    """The reported crash: a 1.3 kB cookie of nested JSON was a 500 with a traceback."""
    whoami = await client.get("/whoami", **credentials)
    assert (whoami.status_code, whoami.json()) == (200, {"currentUser": None})
    private = await client.get("/private", **credentials)
    assert private.status_code == 401
