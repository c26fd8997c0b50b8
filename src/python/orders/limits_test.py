"""Orders' create route spends the user's write budget (`common.limits`): past it,
429 with Retry-After — a refused request counts too, so a script cannot probe freely."""

from __future__ import annotations

from bson import ObjectId

from orders.main import create_orders_app
from testkit.auth import session_cookie
from testkit.http import app_client


async def test_orders_past_the_budget_are_refused(make_settings, clean_db, recording_nats):
    settings = make_settings(user_writes_per_minute=2)
    app = create_orders_app(settings, database=clean_db.name, nats=recording_nats)
    buyer = session_cookie(user_id="buyer")
    async with app_client(app) as client:
        attempts = [
            await client.post("/api/orders", json={"ticketId": str(ObjectId())}, cookies=buyer)
            for _ in range(3)
        ]
    assert [r.status_code for r in attempts] == [404, 404, 429]
    assert int(attempts[-1].headers["retry-after"]) >= 1
