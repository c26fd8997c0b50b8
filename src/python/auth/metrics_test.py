"""auth's own gauge on /metrics: sign-ups and sign-ins queued for an argon2 slot."""

import asyncio

from auth.main import create_auth_app
from testkit.http import app_client
from testkit.metrics import scrape, value
from testkit.waiting import eventually


async def test_the_argon2_queue_length_is_on_metrics(make_settings, clean_db, nats_manager):
    app = create_auth_app(make_settings(argon2_queue_seconds=30), database=clean_db.name)
    slots = app.state.context.own._slots
    async with app_client(app) as client:
        assert value(await scrape(client), "argon2_queue_length") == 0
        while not slots.locked():  # every slot busy, as under a burst
            await slots.acquire()
        signup = asyncio.create_task(
            client.post("/api/users/signup", json={"email": "q@test.com", "password": "secret"})
        )

        async def queued() -> bool:
            return value(await scrape(client), "argon2_queue_length") == 1

        await eventually(queued)
        slots.release()
        assert (await signup).status_code == 201
        assert value(await scrape(client), "argon2_queue_length") == 0
