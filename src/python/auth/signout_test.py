"""Sign-out ends the session everywhere: across auth replicas and tickets, on a real
nats-server and the MongoDB-wire server — also for a copy of the token kept back, and
for a process that starts after the sign-out."""

import json

import pytest
from pydantic import ValidationError

from auth.core.config import AuthSettings
from auth.main import create_auth_app
from common.auth import SESSION_COOKIE, decode_session
from common.events import STREAM_NAME
from testkit.auth import TEST_JWT_KEY
from testkit.http import app_client
from testkit.settings import settings_for
from testkit.waiting import eventually
from tickets.core.config import TicketsSettings
from tickets.main import create_tickets_app

USER = {"email": "leaver@test.com", "password": "secret1"}
TICKET = {"title": "Concert", "price": 20}


async def test_a_signed_out_token_is_refused_by_auth_and_tickets(
    make_settings, mongo_server, nats_server, clean_db, nats_manager
):
    tickets_settings = settings_for(TicketsSettings, mongo_server, nats_server)
    tickets_db = f"{clean_db.name}_tickets"
    async with (
        app_client(create_auth_app(make_settings(), database=clean_db.name)) as auth,
        app_client(create_auth_app(make_settings(), database=clean_db.name)) as auth_replica,
        app_client(create_tickets_app(tickets_settings, database=tickets_db)) as tickets,
    ):
        signed_up = await auth.post("/api/users/signup", json=USER)
        cookie = {SESSION_COOKIE: signed_up.cookies[SESSION_COOKIE]}
        kept_copy = {"authorization": f"Bearer {decode_session(cookie[SESSION_COOKIE])}"}
        assert (await tickets.post("/api/tickets", json=TICKET, cookies=cookie)).status_code == 201

        signed_out = await auth.post("/api/users/signout", cookies=cookie)
        assert signed_out.status_code == 200
        assert "Max-Age=0" in signed_out.headers["set-cookie"]

        # this replica: at once; the other replica and tickets: as the event reaches them
        whoami = await auth.get("/api/users/currentuser", headers=kept_copy)
        assert whoami.json() == {"currentUser": None}

        async def refused_everywhere() -> bool:
            replica = await auth_replica.get("/api/users/currentuser", cookies=cookie)
            create = await tickets.post("/api/tickets", json=TICKET, headers=kept_copy)
            return replica.json() == {"currentUser": None} and create.status_code == 401

        await eventually(refused_everywhere)

    # recorded once, with its event on the stream
    revoked = await clean_db.revoked_sessions.find_one({})
    last = await nats_manager.jetstream.get_last_msg(STREAM_NAME, "session.revoked")
    assert json.loads(last.data)["jti"] == revoked["_id"]
    assert last.headers["Nats-Msg-Id"] == f"session.revoked:{revoked['_id']}"

    # a tickets process started after the sign-out reads it from the stream first
    async with app_client(create_tickets_app(tickets_settings, database=tickets_db)) as fresh:
        response = await fresh.post("/api/tickets", json=TICKET, cookies=cookie)
        assert response.status_code == 401
        assert response.json() == {"errors": [{"message": "Not authorized"}]}

    # and signing in again gives a new session that works
    async with (
        app_client(create_auth_app(make_settings(), database=clean_db.name)) as auth,
        app_client(create_tickets_app(tickets_settings, database=tickets_db)) as tickets,
    ):
        signed_in = await auth.post("/api/users/signin", json=USER)
        new_cookie = {SESSION_COOKIE: signed_in.cookies[SESSION_COOKIE]}
        response = await tickets.post("/api/tickets", json=TICKET, cookies=new_cookie)
        assert response.status_code == 201


def test_sign_outs_stay_on_the_stream_as_long_as_their_tokens_live():
    """A process starting later reads the sign-outs back from the stream."""
    common = {"mongo_uri": "mongodb://x", "jwt_key": TEST_JWT_KEY, "nats_url": "nats://x"}
    with pytest.raises(ValidationError, match="raise the stream's max age"):
        AuthSettings(**common, jwt_lifetime_seconds=2 * 86_400, stream_max_age_seconds=86_400)
    assert AuthSettings(**common, stream_max_age_seconds=0).jwt_lifetime_seconds == 86_400


async def test_sign_out_everywhere_ends_every_session_of_the_user_and_no_other(
    make_settings, mongo_server, nats_server, clean_db, nats_manager
):
    """Two browsers signed in as one user, and another user: `?everywhere=true` from the
    first ends both of that user's sessions in auth and tickets, with one event."""
    tickets_settings = settings_for(TicketsSettings, mongo_server, nats_server)
    tickets_db = f"{clean_db.name}_tickets"
    async with (
        app_client(create_auth_app(make_settings(), database=clean_db.name)) as auth,
        app_client(create_tickets_app(tickets_settings, database=tickets_db)) as tickets,
    ):
        await auth.post("/api/users/signup", json=USER)
        other = {"email": "stayer@test.com", "password": "secret1"}
        await auth.post("/api/users/signup", json=other)
        sessions = []
        for who in (USER, USER, other):
            signed_in = await auth.post("/api/users/signin", json=who)
            sessions.append({SESSION_COOKIE: signed_in.cookies[SESSION_COOKIE]})
        laptop, phone, stayer = sessions
        auth.cookies.clear()

        async def creates(cookie) -> int:
            return (await tickets.post("/api/tickets", json=TICKET, cookies=cookie)).status_code

        assert [await creates(s) for s in sessions] == [201, 201, 201]
        signed_out = await auth.post("/api/users/signout?everywhere=true", cookies=laptop)
        assert signed_out.status_code == 200

        async def ended() -> bool:
            return [await creates(s) for s in sessions] == [401, 401, 201]

        await eventually(ended)
        for cookie in (laptop, phone):
            whoami = await auth.get("/api/users/currentuser", cookies=cookie)
            assert whoami.json() == {"currentUser": None}

    # one event: every token of the user issued before the sign-out
    last = await nats_manager.jetstream.get_last_msg(STREAM_NAME, "session.revoked")
    event = json.loads(last.data)
    assert event["allBefore"] > 0 and event["exp"] >= event["allBefore"] + 86_400 - 1

    # signing in again, at once, gives a session that works (its token is issued at
    # `allBefore`, not before); the old ones stay refused, also by a process started now
    async with (
        app_client(create_auth_app(make_settings(), database=clean_db.name)) as auth,
        app_client(create_tickets_app(tickets_settings, database=tickets_db)) as tickets,
    ):
        assert (await tickets.post("/api/tickets", json=TICKET, cookies=phone)).status_code == 401
        signed_in = await auth.post("/api/users/signin", json=USER)
        fresh = {SESSION_COOKIE: signed_in.cookies[SESSION_COOKIE]}
        assert (await tickets.post("/api/tickets", json=TICKET, cookies=fresh)).status_code == 201
