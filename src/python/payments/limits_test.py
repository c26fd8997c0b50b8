"""Payments' pay route spends the user's write budget (`common.limits`)."""

from __future__ import annotations

from bson import ObjectId

from payments.main import create_payments_app
from testkit.auth import session_cookie
from testkit.http import app_client


async def test_payments_past_the_budget_are_refused(
    make_settings, clean_db, recording_nats, provider
):
    settings = make_settings(user_writes_per_minute=2)
    app = create_payments_app(
        settings, database=clean_db.name, nats=recording_nats, provider=provider
    )
    payer = session_cookie(user_id="payer")
    body = {"orderId": str(ObjectId()), "token": "tok_visa"}
    async with app_client(app) as client:
        attempts = [await client.post("/api/payments", json=body, cookies=payer) for _ in range(3)]
    assert [r.status_code for r in attempts] == [404, 404, 429]
