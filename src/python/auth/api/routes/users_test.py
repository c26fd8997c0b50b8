"""The auth routes against the REAL MongoDB-wire server: the original suite and more."""

import asyncio
import base64
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from auth.main import create_auth_app
from common.auth import SESSION_COOKIE, sign_jwt
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import (
    NOT_TEXT,
    app_client,
    non_json_state_changes,
    not_refused_as_non_json,
    send_raw_json,
    stored_documents,
)

SIGNUP = "/api/users/signup"
SIGNIN = "/api/users/signin"
USER = {"email": "test@test.com", "password": "password"}


def errors(response) -> list[dict]:
    return response.json()["errors"]


def session_of(response) -> str | None:
    return response.cookies.get(SESSION_COOKIE)


# --- signup ---------------------------------------------------------------------------


async def test_signup_returns_201_with_id_and_email_only(client, clean_db):
    response = await client.post(SIGNUP, json=USER)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email"}
    assert body["email"] == "test@test.com"
    stored = await clean_db.users.find_one({"email": "test@test.com"})
    assert str(stored["_id"]) == body["id"]
    assert stored["password"].startswith("$argon2id$")
    assert "password" not in response.text


async def test_signup_sets_a_session_cookie_with_safe_flags(client):
    response = await client.post(SIGNUP, json=USER)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=ey")  # bare base64, as the original writes it
    assert '"' not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Max-Age=86400" in cookie
    assert "Secure" not in cookie  # COOKIE_SECURE=false in this dev/test setup
    token = json.loads(base64.b64decode(session_of(response)))["jwt"]
    assert token.count(".") == 2


async def test_cookie_is_secure_when_configured(make_settings, clean_db):
    app = create_auth_app(make_settings(cookie_secure=True), database=clean_db.name)
    async with app_client(app) as client:
        response = await client.post(SIGNUP, json=USER)
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    "email", ["alskdflaskjfd", "a@b", "@test.com", "test@", "a b@test.com", ""]
)
async def test_signup_rejects_an_invalid_email(client, email):
    response = await client.post(SIGNUP, json={"email": email, "password": "password"})
    assert response.status_code == 400
    assert errors(response) == [{"message": "Email must be valid", "field": "email"}]


@pytest.mark.parametrize("password", ["p", "abc", "   abc   ", "x" * 21, ""])
async def test_signup_rejects_a_password_of_bad_length(client, password):
    response = await client.post(SIGNUP, json={"email": "test@test.com", "password": password})
    assert response.status_code == 400
    assert errors(response) == [
        {"message": "Password must be between 4 and 20 characters", "field": "password"}
    ]


async def test_signup_with_missing_fields_reports_each(client):
    for body in ({"email": "test@test.com"}, {"password": "password"}, {}):
        response = await client.post(SIGNUP, json=body)
        assert response.status_code == 400
    response = await client.post(SIGNUP, json={})
    assert {e["field"] for e in errors(response)} == {"email", "password"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": {"$gt": ""}, "password": "password"},
        {"email": {"$ne": None}, "password": {"$ne": None}},
        {"email": ["test@test.com"], "password": "password"},
        {"email": 12345, "password": "password"},
        {"email": "test@test.com", "password": 12345678},
        {"email": None, "password": None},
    ],
)
async def test_signup_rejects_wrong_types_and_operators_without_touching_the_db(
    client, clean_db, body
):
    response = await client.post(SIGNUP, json=body)
    assert response.status_code == 400
    assert all(e["field"] in ("email", "password") for e in errors(response))
    assert await clean_db.users.count_documents({}) == 0


async def test_signup_rejects_a_non_json_or_non_object_body(client):
    response = await client.post(
        SIGNUP, content=b"email=a", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert errors(response) == [{"message": "Request body must be valid JSON"}]
    assert (await client.post(SIGNUP, json=["x"])).status_code == 400
    assert (await client.post(SIGNUP)).status_code == 400


async def test_signup_rejects_an_oversized_body(client, clean_db):
    response = await client.post(SIGNUP, json={**USER, "padding": "x" * 1_000_000})
    assert response.status_code == 413
    assert errors(response) == [{"message": "Request body is too large"}]
    assert await clean_db.users.count_documents({}) == 0


async def test_signup_disallows_duplicate_emails_whatever_the_case_or_spaces(client):
    assert (await client.post(SIGNUP, json=USER)).status_code == 201
    for email in ("test@test.com", "  TEST@Test.com  "):
        response = await client.post(SIGNUP, json={"email": email, "password": "other1"})
        assert response.status_code == 400
        assert errors(response) == [{"message": "Email in use"}]


async def test_signup_race_for_one_email_gives_one_201_and_400s_never_500(client, clean_db):
    responses = await asyncio.gather(
        *(
            client.post(SIGNUP, json={"email": "race@test.com", "password": f"pass{n}"})
            for n in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [400] * 7
    assert all(
        errors(r) == [{"message": "Email in use"}] for r in responses if r.status_code == 400
    )
    assert await clean_db.users.count_documents({"email": "race@test.com"}) == 1


# --- signin ---------------------------------------------------------------------------


async def test_signin_with_an_unknown_email_is_invalid_credentials(client):
    response = await client.post(SIGNIN, json=USER)
    assert response.status_code == 400
    assert errors(response) == [{"message": "Invalid credentials"}]
    assert session_of(response) is None


async def test_signin_with_a_wrong_password_gives_the_same_answer(client):
    await client.post(SIGNUP, json=USER)
    client.cookies.clear()
    response = await client.post(SIGNIN, json={"email": USER["email"], "password": "wrongpass"})
    assert response.status_code == 400
    assert errors(response) == [{"message": "Invalid credentials"}]
    assert session_of(response) is None


async def test_signin_with_the_right_password_returns_200_and_a_cookie(client):
    created = (await client.post(SIGNUP, json=USER)).json()
    client.cookies.clear()
    response = await client.post(SIGNIN, json={"email": " Test@TEST.com", "password": " password "})
    assert response.status_code == 200
    assert response.json() == created
    assert session_of(response)


async def test_signin_requires_a_valid_email_and_a_password(client):
    response = await client.post(SIGNIN, json={"email": "nope"})
    assert response.status_code == 400
    assert errors(response) == [
        {"message": "Email must be valid", "field": "email"},
        {"message": "You must supply a password", "field": "password"},
    ]


async def test_signin_rejects_operator_injection(client):
    await client.post(SIGNUP, json=USER)
    client.cookies.clear()
    for body in (
        {"email": {"$gt": ""}, "password": "password"},
        {"email": "test@test.com", "password": {"$gt": ""}},
    ):
        response = await client.post(SIGNIN, json=body)
        assert response.status_code == 400
        assert session_of(response) is None


async def test_signin_rehashes_a_password_stored_with_older_parameters(make_settings, clean_db):
    async with app_client(create_auth_app(make_settings(), database=clean_db.name)) as old:
        await old.post(SIGNUP, json=USER)
    before = (await clean_db.users.find_one({}))["password"]
    assert "t=1," in before
    stronger = make_settings(argon2_time_cost=2)
    async with app_client(create_auth_app(stronger, database=clean_db.name)) as new:
        assert (await new.post(SIGNIN, json=USER)).status_code == 200
        after = (await clean_db.users.find_one({}))["password"]
        assert after != before
        assert "t=2," in after
        new.cookies.clear()
        assert (await new.post(SIGNIN, json=USER)).status_code == 200  # the new hash works


# --- signout / currentuser -----------------------------------------------------------


async def test_signout_clears_the_cookie(client):
    await client.post(SIGNUP, json=USER)
    response = await client.post("/api/users/signout")
    assert response.status_code == 200
    assert response.json() == {}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=;")
    assert "Max-Age=0" in cookie
    assert "Expires=Thu, 01 Jan 1970" in cookie
    assert (await client.get("/api/users/currentuser")).json() == {"currentUser": None}


async def test_currentuser_returns_the_user_after_signup(client):
    created = (await client.post(SIGNUP, json=USER)).json()
    response = await client.get("/api/users/currentuser")
    assert response.status_code == 200
    current = response.json()["currentUser"]
    assert {k: current[k] for k in ("id", "email")} == created
    assert current["exp"] - current["iat"] == 86400


async def test_currentuser_is_null_without_a_cookie(client):
    response = await client.get("/api/users/currentuser")
    assert response.status_code == 200
    assert response.json() == {"currentUser": None}


async def test_currentuser_is_null_for_expired_or_tampered_tokens(client):
    expired = session_cookie(TEST_JWT_KEY, lifetime=timedelta(seconds=-60))
    forged = session_cookie("a-different-key-that-is-32-chars-long!!")
    for cookies in (
        expired,
        forged,
        {"session": "%%%"},
        {"session": base64.b64encode(b"{}").decode()},
    ):
        client.cookies.clear()
        client.cookies.update(cookies)
        response = await client.get("/api/users/currentuser")
        assert response.status_code == 200
        assert response.json() == {"currentUser": None}


async def test_currentuser_accepts_a_bearer_token(client):
    created = (await client.post(SIGNUP, json=USER)).json()
    client.cookies.clear()
    token = sign_jwt(created["id"], created["email"], TEST_JWT_KEY)
    response = await client.get(
        "/api/users/currentuser", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["currentUser"]["email"] == "test@test.com"


async def test_currentuser_is_null_for_a_deleted_user(client, clean_db):
    await client.post(SIGNUP, json=USER)
    await clean_db.users.delete_many({})
    response = await client.get("/api/users/currentuser")
    assert response.json() == {"currentUser": None}


async def test_repeated_failed_signins_are_limited_for_known_and_unknown_emails(client, clean_db):
    await client.post(SIGNUP, json=USER)
    client.cookies.clear()
    for email in ("test@test.com", "nobody@test.com"):
        for _ in range(5):
            response = await client.post(SIGNIN, json={"email": email, "password": "wrong!"})
            assert errors(response) == [{"message": "Invalid credentials"}]
        # the 6th attempt is refused even with the right password, and says so plainly
        response = await client.post(SIGNIN, json={"email": email, "password": "password"})
        assert response.status_code == 429
        assert errors(response) == [
            {"message": "Too many failed sign-ins for this email; try again later"}
        ]
    # once the window has passed, sign-in works again and the counter is cleared
    await clean_db.attempts.update_many(
        {}, {"$set": {"window.end": datetime(2000, 1, 1, tzinfo=UTC)}}
    )
    assert (await client.post(SIGNIN, json=USER)).status_code == 200
    assert await clean_db.attempts.count_documents({"_id": "signin:test@test.com"}) == 0


async def test_simultaneous_wrong_signins_verify_at_most_the_limit(make_settings, clean_db):
    """The reported bypass: 30 simultaneous guesses for one email were all verified
    (30 x 400), because each read the count before any had recorded its failure."""
    app = create_auth_app(make_settings(), database=clean_db.name)
    async with app_client(app) as client:
        await client.post(SIGNUP, json=USER)
        client.cookies.clear()
        passwords = app.state.context.own
        real_check, verified = passwords.check, []

        async def counting_check(*args):
            verified.append(1)
            return await real_check(*args)

        passwords.check = counting_check
        guess = {"email": USER["email"], "password": "wrong!"}
        responses = await asyncio.gather(*(client.post(SIGNIN, json=guess) for _ in range(50)))
        codes = Counter(r.status_code for r in responses)
        assert len(verified) == 5  # SIGNIN_MAX_FAILURES, however many arrive at once
        assert codes == {400: 5, 429: 45}
        waits = {int(r.headers["retry-after"]) for r in responses if r.status_code == 429}
        assert waits and all(0 < w <= 901 for w in waits)  # the 15-minute window's rest
        # the right password, within the window: still refused (it is a guess too)
        assert (await client.post(SIGNIN, json=USER)).status_code == 429
        # after the window, it works again
        await clean_db.attempts.update_many(
            {}, {"$set": {"window.end": datetime(2000, 1, 1, tzinfo=UTC)}}
        )
        assert (await client.post(SIGNIN, json=USER)).status_code == 200


async def test_a_successful_signin_resets_the_failure_count(client, clean_db):
    await client.post(SIGNUP, json=USER)
    for _ in range(4):
        await client.post(SIGNIN, json={"email": USER["email"], "password": "wrong!"})
    assert (await client.post(SIGNIN, json=USER)).status_code == 200
    for _ in range(4):
        assert (
            await client.post(SIGNIN, json={"email": USER["email"], "password": "x!x!"})
        ).status_code == 400
    assert (await client.post(SIGNIN, json=USER)).status_code == 200


async def test_openapi_documents_each_route_with_the_error_shape(client):
    schema = (await client.get("/openapi.json")).json()
    signup = schema["paths"]["/api/users/signup"]["post"]
    assert set(signup["responses"]) == {"201", "400", "413", "429"}
    assert signup["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert "422" not in json.dumps(schema)
    assert {"/api/users/signin", "/api/users/signout", "/api/users/currentuser"} <= set(
        schema["paths"]
    )
    assert (await client.get("/docs")).status_code == 200


async def test_a_cross_site_form_cannot_sign_up_sign_in_or_sign_out(client, clean_db):
    """The CSRF guard (login CSRF too): a valid body declared as a form or plain text →
    415, no account made, no session cookie set."""
    responses = await non_json_state_changes(client, {})
    assert len(responses) == 9  # signup, signin, signout, 3 types each
    assert not_refused_as_non_json(responses) == {}
    assert not any("set-cookie" in r.headers for r in responses.values())
    assert await stored_documents(clean_db) == 0
    # a request with no body and no Content-Type is not a form: sign-out still works
    assert (await client.post("/api/users/signout")).status_code == 200


def from_address(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


async def test_one_address_cannot_spray_a_password_over_many_emails(make_settings, clean_db):
    """Per-address limit: 30 simultaneous sign-ins for 30 different emails from one
    address (behind one trusted proxy) → exactly the limit verified, the rest 429;
    another address still gets through."""
    settings = make_settings(ip_signin_limit=8, trusted_proxy_hops=1)
    async with app_client(create_auth_app(settings, database=clean_db.name)) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    SIGNIN,
                    json={"email": f"victim{i}@test.com", "password": "Summer2026"},
                    headers=from_address("203.0.113.7"),
                )
                for i in range(30)
            )
        )
        assert Counter(r.status_code for r in responses) == {400: 8, 429: 22}
        refused = next(r for r in responses if r.status_code == 429)
        assert errors(refused) == [
            {"message": "Too many attempts from this address; try again later"}
        ]
        assert 0 < int(refused.headers["retry-after"]) <= 601
        other = await client.post(
            SIGNIN,
            json={"email": "victim0@test.com", "password": "x1234"},
            headers=from_address("198.51.100.1"),
        )
        assert other.status_code == 400


async def test_one_address_cannot_sign_up_without_limit(make_settings, clean_db):
    settings = make_settings(ip_signup_limit=5)
    async with app_client(create_auth_app(settings, database=clean_db.name)) as client:
        responses = await asyncio.gather(
            *(
                client.post(SIGNUP, json={"email": f"bot{i}@test.com", "password": "secret1"})
                for i in range(12)
            )
        )
        assert Counter(r.status_code for r in responses) == {201: 5, 429: 7}
        assert await clean_db.users.count_documents({}) == 5


async def test_the_client_address_is_read_only_from_trusted_proxy_hops(make_settings, clean_db):
    """A client cannot pick its own address: with no trusted proxy X-Forwarded-For is
    ignored, and behind one proxy only the entry that proxy appended counts."""
    direct = make_settings(ip_signup_limit=2)
    async with app_client(create_auth_app(direct, database=clean_db.name)) as client:
        codes = [
            (
                await client.post(
                    SIGNUP,
                    json={"email": f"spoof{i}@test.com", "password": "secret1"},
                    headers=from_address(f"10.0.0.{i}"),  # forged: ignored
                )
            ).status_code
            for i in range(3)
        ]
        assert codes == [201, 201, 429]
    await clean_db.attempts.delete_many({})
    proxied = make_settings(ip_signup_limit=2, trusted_proxy_hops=1)
    async with app_client(create_auth_app(proxied, database=clean_db.name)) as client:
        codes = [
            (
                await client.post(
                    SIGNUP,
                    json={"email": f"proxied{i}@test.com", "password": "secret1"},
                    # the client forged the left entry; the proxy appended the real one
                    headers=from_address(f"10.0.0.{i}, 192.0.2.50"),
                )
            ).status_code
            for i in range(3)
        ]
        assert codes == [201, 201, 429]


@pytest.mark.parametrize("url", [SIGNUP, SIGNIN])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{"email": "a@b.co", "password": "secret{NOT_TEXT}"}}', "password"),
        (f'{{"email": "a{NOT_TEXT}@b.co", "password": "secret"}}', "email"),
    ],
)
async def test_text_that_is_not_unicode_is_400_naming_the_field(client, clean_db, url, body, field):
    """A lone surrogate in a password was a 500 from inside the argon2 library."""
    response = await send_raw_json(client, "POST", url, body)
    assert response.status_code == 400
    message = f"{field.capitalize()} must be valid text"
    assert response.json() == {"errors": [{"message": message, "field": field}]}
    assert await stored_documents(clean_db) == 0


async def test_a_session_cookie_holding_text_that_is_not_unicode_is_no_session(client):
    cookie = base64.b64encode(json.dumps({"jwt": "\ud800"}).encode()).decode()
    response = await client.get("/api/users/currentuser", cookies={SESSION_COOKIE: cookie})
    assert response.status_code == 200
    assert response.json() == {"currentUser": None}
