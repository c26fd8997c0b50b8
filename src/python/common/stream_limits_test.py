"""The stream cannot fail silently (real nats-server and MongoDB-wire server): it has
limits, an operator's stricter limits stay, a deleted stream is made again by the
service that finds it gone, and /readyz says when events are stuck in the outbox."""

import asyncio

from nats.errors import Error as NatsError

from common.events import STREAM_NAME, TICKETING_STREAM
from common.events.contracts import ticketing_stream
from common.service_template_test import ItemCopier, template_app
from testkit.http import app_client
from testkit.streams import stream_messages
from testkit.waiting import eventually

DAY = 86_400.0


async def test_the_stream_gets_this_environments_limits(nats_manager):
    info = await nats_manager.ensure_stream(ticketing_stream(max_age_seconds=DAY, max_bytes=10**8))
    assert (info.config.max_age, info.config.max_bytes) == (DAY, 10**8)


async def test_ensure_stream_keeps_a_stricter_limit_an_operator_set(nats_manager):
    js = nats_manager.jetstream
    await nats_manager.ensure_stream(ticketing_stream(max_age_seconds=7 * DAY))
    stricter = (await js.stream_info(STREAM_NAME)).config
    stricter.max_age, stricter.max_bytes = DAY, 5 * 10**7
    await js.update_stream(stricter)  # by hand, e.g. `nats stream edit`
    info = await nats_manager.ensure_stream(ticketing_stream(max_age_seconds=7 * DAY))
    assert (info.config.max_age, info.config.max_bytes) == (DAY, 5 * 10**7)
    # and a limit the contract tightens is applied
    info = await nats_manager.ensure_stream(ticketing_stream(max_age_seconds=3600))
    assert info.config.max_age == 3600


async def test_a_deleted_stream_is_made_again_and_nothing_is_lost(
    mongo_server, nats_server, nats_manager, clean_db
):
    """Someone deletes the stream under a running service: the next write's event is
    not lost — the relay recreates the stream (per the contract) and sends it — and the
    service's listener makes its consumer again and goes on consuming."""
    ItemCopier.handled.clear()
    app = template_app(mongo_server, nats_server, clean_db.name)
    async with app_client(app) as client:
        first = (await client.post("/items")).json()["id"]
        await eventually(lambda: ItemCopier.handled[first] == 1)

        await nats_manager.jetstream.delete_stream(STREAM_NAME)
        second = (await client.post("/items")).json()["id"]  # answered: the event waits
        info = await _eventually_stream(nats_manager)
        assert set(info.config.subjects) == set(TICKETING_STREAM.subjects)
        await eventually(lambda: ItemCopier.handled[second] == 1)
        messages = await stream_messages(nats_manager.jetstream, "ticket.created")
        assert [m.headers["Nats-Msg-Id"] for m in messages] == [f"ticket.created:{second}:0"]


async def _eventually_stream(nats_manager):
    found = []

    async def exists() -> bool:
        try:
            found[:] = [await nats_manager.jetstream.stream_info(STREAM_NAME)]
        except Exception:
            return False
        return True

    await eventually(exists)
    return found[0]


async def test_readyz_fails_while_an_event_is_stuck_in_the_outbox(
    mongo_server, nats_server, nats_manager, clean_db, monkeypatch
):
    app = template_app(mongo_server, nats_server, clean_db.name)
    async with app_client(app) as client:
        assert (await client.get("/readyz")).json()["checks"]["outbox"] is True
        app.state.context.settings.outbox_stuck_seconds = 0.5  # (60 s by default)
        js = app.state.context.nats.jetstream

        async def refused(*args, **kwargs):  # as a full or misconfigured stream does
            raise NatsError("nats: maximum messages exceeded")

        monkeypatch.setattr(js, "publish", refused)
        assert (await client.post("/items")).status_code == 201  # saved; left to the relay
        await asyncio.sleep(0.6)
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["outbox"] is False
        assert "events unsent for over 0.5 s" in response.json()["errors"][0]["message"]
        monkeypatch.undo()  # the stream takes it again: the relay sends it
        await eventually(lambda: _status(client, "/readyz", 200))
        assert len(await stream_messages(nats_manager.jetstream)) == 1


async def _status(client, path: str, expected: int) -> bool:
    return (await client.get(path)).status_code == expected
