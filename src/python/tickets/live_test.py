"""The tickets service end to end on a REAL nats-server and MongoDB-wire server:
events on the stream, the outbox when NATS is down or the process dies, ordering."""

import asyncio

from bson import ObjectId

from common.outbox import unsent_count
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import app_client
from testkit.streams import outbox_drained, stream_messages, stream_payloads
from testkit.waiting import eventually
from tickets.main import create_tickets_app
from tickets.repository import TICKETS

URL = "/api/tickets"


def signed_in(user_id: str) -> dict[str, str]:
    return session_cookie(TEST_JWT_KEY, user_id=user_id)


async def test_create_and_update_are_on_the_stream_with_exact_payload_and_msg_id(
    live_client, nats_manager, clean_db
):
    user = str(ObjectId())
    created = (
        await live_client.post(URL, json={"title": "Gig", "price": 12.5}, cookies=signed_in(user))
    ).json()
    # The response came after the ack: the message is already stored (and the event is
    # cleared from the ticket's outbox soon after, off the request path).
    [message] = await stream_messages(nats_manager.jetstream)
    assert message.subject == "ticket.created"
    assert message.headers["Nats-Msg-Id"] == f"ticket.created:{created['id']}:0"
    assert (await stream_payloads(nats_manager.jetstream)) == [
        {"id": created["id"], "version": 0, "title": "Gig", "price": 12.5, "userId": user}
    ]
    await eventually(lambda: outbox_drained(clean_db, TICKETS))

    response = await live_client.put(
        f"{URL}/{created['id']}", json={"title": "Gig!", "price": 15}, cookies=signed_in(user)
    )
    assert response.status_code == 200
    [updated] = await stream_messages(nats_manager.jetstream, "ticket.updated")
    assert updated.headers["Nats-Msg-Id"] == f"ticket.updated:{created['id']}:1"
    assert (await stream_payloads(nats_manager.jetstream, "ticket.updated")) == [
        {"id": created["id"], "version": 1, "title": "Gig!", "price": 15, "userId": user}
    ]


async def test_nats_down_creates_still_succeed_and_every_event_arrives_once(
    make_settings, clean_db, nats_manager, nats_server
):
    app = create_tickets_app(make_settings(), database=clean_db.name)
    async with app_client(app) as client:
        nats_server.stop()
        await eventually(lambda: not app.state.context.nats.is_connected)
        assert (await client.get("/readyz")).status_code == 503
        user = str(ObjectId())
        ids = []
        for n in range(5):
            response = await client.post(
                URL, json={"title": f"t{n}", "price": 5}, cookies=signed_in(user)
            )
            assert response.status_code == 201
            ids.append(response.json()["id"])
        assert await unsent_count(clean_db, [TICKETS]) == 5

        nats_server.restart()
        await eventually(lambda: app.state.context.nats.is_connected and nats_manager.is_connected)
        await eventually(lambda: outbox_drained(clean_db, TICKETS))
        assert (await client.get("/readyz")).status_code == 200

    messages = await stream_messages(nats_manager.jetstream, "ticket.created")
    in_mongo = sorted(str(d["_id"]) for d in await clean_db.tickets.find().to_list())
    assert (
        sorted(m.headers["Nats-Msg-Id"].split(":")[1] for m in messages) == in_mongo == sorted(ids)
    )


async def test_crash_between_commit_and_publish_is_healed_by_the_relay(
    make_settings, clean_db, nats_manager, monkeypatch
):
    app = create_tickets_app(make_settings(), database=clean_db.name)
    async with app_client(app) as client:

        async def crashed_before_publishing(collection: str, doc_id: object, entries) -> bool:
            return False  # the handler "died" right after the write

        monkeypatch.setattr(app.state.context.outbox.relay, "deliver", crashed_before_publishing)
        created = (
            await client.post(URL, json={"title": "t", "price": 5}, cookies=signed_in("u1"))
        ).json()
        # nothing published by the handler; the relay's scan delivers it
        await eventually(lambda: outbox_drained(clean_db, TICKETS))
    [message] = await stream_messages(nats_manager.jetstream)
    assert message.headers["Nats-Msg-Id"] == f"ticket.created:{created['id']}:0"


async def test_pending_events_from_a_previous_process_are_sent_on_start(
    make_settings, clean_db, nats_manager, nats_server
):
    first = create_tickets_app(make_settings(), database=clean_db.name)
    async with app_client(first) as client:
        nats_server.stop()
        await eventually(lambda: not first.state.context.nats.is_connected)
        created = (
            await client.post(URL, json={"title": "t", "price": 5}, cookies=signed_in("u1"))
        ).json()
        # this process ends with the event unsent (NATS still down)
    nats_server.restart()
    await eventually(lambda: nats_manager.is_connected)
    assert await unsent_count(clean_db, [TICKETS]) == 1
    second = create_tickets_app(make_settings(), database=clean_db.name)
    async with app_client(second):
        await eventually(lambda: outbox_drained(clean_db, TICKETS))
    [message] = await stream_messages(nats_manager.jetstream)
    assert message.headers["Nats-Msg-Id"] == f"ticket.created:{created['id']}:0"


async def test_versions_on_the_stream_strictly_increase_per_ticket(live_client, nats_manager):
    user = str(ObjectId())
    created = (
        await live_client.post(URL, json={"title": "t", "price": 1}, cookies=signed_in(user))
    ).json()
    for round_ in range(3):
        await asyncio.gather(
            *(
                live_client.put(
                    f"{URL}/{created['id']}",
                    json={"title": f"r{round_}e{n}", "price": 2},
                    cookies=signed_in(user),
                )
                for n in range(4)
            )
        )
    final = (await live_client.get(f"{URL}/{created['id']}")).json()
    versions = [
        p["version"] for p in await stream_payloads(nats_manager.jetstream, "ticket.updated")
    ]
    assert versions == list(range(1, final["version"] + 1))
    last = (await stream_payloads(nats_manager.jetstream, "ticket.updated"))[-1]
    assert last["title"] == final["title"]
