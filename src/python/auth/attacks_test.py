"""Attacks on the auth service, each rejected cleanly with nothing stored (against the
real Mongo-wire server). Token attacks: common/auth_test.py and the routes'
tests; brute force: api/routes/users_test.py."""

import json
import statistics
import time

import pytest

from auth.core.passwords import Passwords

SIGNUP = "/api/users/signup"
SIGNIN = "/api/users/signin"


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [100, 10_000])
async def test_deeply_nested_json_is_rejected_cleanly(client, clean_db, depth):
    body = '{"email": "a@b.co", "password": "secret1", "x": ' + nested(depth) + "}"
    response = await client.post(SIGNUP, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (201, 400)  # accepted as data, or refused: never a 500
    assert "errors" in response.json() or response.status_code == 201
    deep_email = '{"email": ' + nested(depth) + ', "password": "secret1"}'
    response = await client.post(
        SIGNUP, content=deep_email, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert await clean_db.users.count_documents({"email": {"$type": "object"}}) == 0


async def test_a_1_mb_body_is_refused_and_nothing_stored(client, clean_db):
    response = await client.post(
        SIGNUP,
        content=b'{"email": "' + b"a" * 1_000_000 + b'@b.co"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert await clean_db.users.count_documents({}) == 0


@pytest.mark.parametrize(
    "email",
    [
        "\u0000a@b.co",
        "a\u202e@b.co",
        "\ud800@b.co",
        "a@b.co\u0000x",
        " @b.co",
        "a@" + "b" * 300 + ".co",
        "a@xn--.co",
        "a@-b.co",
    ],
)
async def test_unicode_edge_cases_in_emails_are_refused_cleanly(client, clean_db, email):
    raw = json.dumps({"email": email, "password": "secret1"}, ensure_ascii=True).encode()
    response = await client.post(SIGNUP, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "email"
    assert await clean_db.users.count_documents({}) == 0


@pytest.mark.parametrize(
    "email", ["Ünïcode@Exämple.com", "用户@例子.广告", "\U0001f600@b.co", "  padded@b.co\n"]
)
async def test_internationalised_emails_are_accepted_and_normalised(client, email):
    response = await client.post(SIGNUP, json={"email": email, "password": "secret1"})
    assert response.status_code == 201
    assert response.json()["email"] == response.json()["email"].lower()


async def test_signin_does_the_same_work_for_unknown_emails_and_wrong_passwords(
    client, monkeypatch
):
    """No enumeration by timing: both paths run exactly one argon2 verification.
    (Timings are printed for RELIABILITY.md, not asserted.)"""
    await client.post(SIGNUP, json={"email": "known@test.com", "password": "secret1"})
    client.cookies.clear()
    verifications: list[str | None] = []
    original = Passwords._check

    def counting(self, stored_hash, password):
        verifications.append(stored_hash)
        return original(self, stored_hash, password)

    monkeypatch.setattr(Passwords, "_check", counting)
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for n in range(8):  # under the brute-force limit (5 per email): a fresh email each time
        for kind, email in (("unknown", f"nobody{n}@test.com"), ("wrong", "known@test.com")):
            if kind == "wrong" and n % 4 == 0:
                await client.post(SIGNIN, json={"email": "known@test.com", "password": "secret1"})
            started = time.perf_counter()
            response = await client.post(SIGNIN, json={"email": email, "password": "bad-guess"})
            timings[kind].append(time.perf_counter() - started)
            assert response.json() == {"errors": [{"message": "Invalid credentials"}]}
    assert len(verifications) == 16 + 2  # one per sign-in, known or not (+2 resets)
    assert verifications.count(None) == 8  # unknown emails verified against the dummy hash
    print(
        "\nRELIABILITY signin-timing-ms "
        + json.dumps({k: round(statistics.median(v) * 1000, 2) for k, v in timings.items()})
    )
