"""Per-user write limits on the tickets routes (`common.limits`), on the real database:
simultaneous creates by one user get exactly the budget through."""

from __future__ import annotations

import asyncio

from testkit.auth import session_cookie
from testkit.http import app_client
from tickets.main import create_tickets_app

BODY = {"title": "Gig", "price": 10}


async def test_simultaneous_creates_by_one_user_get_exactly_the_minute_budget(
    make_settings, clean_db, recording_nats
):
    settings = make_settings(user_writes_per_minute=5, user_writes_per_day=100)
    app = create_tickets_app(settings, database=clean_db.name, nats=recording_nats)
    spammer, other = session_cookie(user_id="spammer"), session_cookie(user_id="other")
    async with app_client(app) as client:
        responses = await asyncio.gather(
            *(client.post("/api/tickets", json=BODY, cookies=spammer) for _ in range(20))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] * 5 + [429] * 15
        refused = [r for r in responses if r.status_code == 429]
        assert all(1 <= int(r.headers["retry-after"]) <= 61 for r in refused)
        assert refused[0].json() == {"errors": [{"message": "Too many changes; try again later"}]}
        assert await clean_db["tickets"].count_documents({}) == 5
        # another user's budget is their own
        assert (await client.post("/api/tickets", json=BODY, cookies=other)).status_code == 201


async def test_edits_spend_the_same_budget_and_the_day_limit_holds_past_the_minute(
    make_settings, clean_db, recording_nats
):
    settings = make_settings(user_writes_per_minute=0, user_writes_per_day=3)
    app = create_tickets_app(settings, database=clean_db.name, nats=recording_nats)
    seller = session_cookie(user_id="seller")
    async with app_client(app) as client:
        ticket = (await client.post("/api/tickets", json=BODY, cookies=seller)).json()
        for price in (11, 12):
            edit = await client.put(
                f"/api/tickets/{ticket['id']}", json={**BODY, "price": price}, cookies=seller
            )
            assert edit.status_code == 200
        refused = await client.post("/api/tickets", json=BODY, cookies=seller)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 86_000  # the day's window, not a minute


async def test_no_limit_when_set_to_zero(make_settings, clean_db, recording_nats):
    settings = make_settings(user_writes_per_minute=0, user_writes_per_day=0)
    app = create_tickets_app(settings, database=clean_db.name, nats=recording_nats)
    async with app_client(app) as client:
        for _ in range(40):
            created = await client.post(
                "/api/tickets", json=BODY, cookies=session_cookie(user_id="u")
            )
            assert created.status_code == 201
