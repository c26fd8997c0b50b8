"""Lock-out resistance (device cookies, `auth.devices`), on the real database: a
stranger who spends an account's budget of wrong guesses cannot stop its owner's
browser — before this, the owner got 429 for 15 minutes (Retry-After: 898)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from auth.devices import DEVICE_COOKIE
from auth.main import create_auth_app
from testkit.http import app_client

SIGNUP, SIGNIN = "/api/users/signup", "/api/users/signin"
VICTIM = {"email": "victim@test.com", "password": "secret1"}
WRONG = {"email": VICTIM["email"], "password": "guess!!"}


@asynccontextmanager
async def browsers(app) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two browsers (cookie jars) on one running app: the victim's and the attacker's."""
    async with app_client(app) as victim:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as attacker:
            yield victim, attacker


def from_address(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}  # behind one trusted proxy (TRUSTED_PROXY_HOPS=1)


async def test_a_strangers_guesses_do_not_lock_out_the_owners_browser(make_settings, clean_db):
    app = create_auth_app(make_settings(trusted_proxy_hops=1), database=clean_db.name)
    async with browsers(app) as (victim, attacker):
        assert (
            await victim.post(SIGNUP, json=VICTIM, headers=from_address("10.0.0.1"))
        ).status_code == 201
        assert DEVICE_COOKIE in victim.cookies
        await victim.post("/api/users/signout")
        # 50 wrong guesses: from the victim's own address and from another, at once
        guesses = [
            attacker.post(SIGNIN, json=WRONG, headers=from_address(address))
            for address in ("10.0.0.1", "10.6.6.6")
            for _ in range(25)
        ]
        codes = Counter(r.status_code for r in await asyncio.gather(*guesses))
        assert codes == {400: 5, 429: 45}  # the account's budget, spent
        # the owner's browser signs in at once, with the right password
        signed_in = await victim.post(SIGNIN, json=VICTIM, headers=from_address("10.0.0.1"))
        assert signed_in.status_code == 200, signed_in.text
        # while any client without the owner's device cookie is still refused
        assert (await attacker.post(SIGNIN, json=VICTIM)).status_code == 429


async def test_the_owners_own_wrong_guesses_lock_that_device_alone(make_settings, clean_db):
    app = create_auth_app(make_settings(), database=clean_db.name)
    async with browsers(app) as (owner, other):
        await owner.post(SIGNUP, json=VICTIM)
        guesses = await asyncio.gather(*(owner.post(SIGNIN, json=WRONG) for _ in range(20)))
        assert Counter(r.status_code for r in guesses) == {400: 5, 429: 15}
        assert (await owner.post(SIGNIN, json=VICTIM)).status_code == 429  # this device: locked
        assert (await other.post(SIGNIN, json=VICTIM)).status_code == 200  # the account: not


async def test_a_device_cookie_of_another_account_or_forged_counts_for_nothing(
    make_settings, clean_db
):
    app = create_auth_app(make_settings(), database=clean_db.name)
    async with browsers(app) as (victim, attacker):
        await victim.post(SIGNUP, json=VICTIM)
        # the attacker's browser is trusted for the attacker's own account only
        await attacker.post(SIGNUP, json={"email": "mallory@test.com", "password": "secret1"})
        stolen_looking = attacker.cookies[DEVICE_COOKIE]
        forged = stolen_looking[:-4] + ("AAAA" if not stolen_looking.endswith("AAAA") else "BBBB")
        for cookie in (stolen_looking, forged):
            attacker.cookies.set(DEVICE_COOKIE, cookie, path="/api/users")
            codes = Counter(
                r.status_code
                for r in await asyncio.gather(
                    *(attacker.post(SIGNIN, json=WRONG) for _ in range(8))
                )
            )
            assert codes[400] <= 5 and codes[429] >= 3  # the account's shared budget
        assert (await attacker.post(SIGNIN, json=VICTIM)).status_code == 429
        assert (await victim.post(SIGNIN, json=VICTIM)).status_code == 200


async def test_the_device_cookie_is_signed_httponly_long_lived_and_for_auth_only(
    make_settings, clean_db
):
    app = create_auth_app(make_settings(cookie_secure=True), database=clean_db.name)
    async with app_client(app) as client:
        response = await client.post(SIGNUP, json=VICTIM)
    [device] = [c for c in response.headers.get_list("set-cookie") if c.startswith("device=")]
    attributes = {part.strip().split("=")[0]: part for part in device.split(";")}
    assert {"HttpOnly", "Secure", "Path"} <= set(attributes)
    assert attributes["Path"].strip() == "Path=/api/users"
    assert int(attributes["Max-Age"].split("=")[1]) == 365 * 86_400
