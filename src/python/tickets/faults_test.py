"""Faults on REAL servers: NATS restarted under load, the Mongo-wire server down.

Prints its figures (pytest -s, or Pants' test output) for RELIABILITY.md.
"""

import asyncio
import json
import os
import signal
from collections import Counter

import httpx
from bson import ObjectId

from common.events import TicketCreatedEvent
from harness.servers import ServiceProcess
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.http import app_client
from testkit.settings import process_env
from testkit.streams import CountingListener, caught_up, outbox_drained, stream_messages
from testkit.waiting import eventually
from tickets.main import create_tickets_app
from tickets.repository import TICKETS

# FAULTS_SOAK=1: a longer run (10,000 creates, NATS killed five times).
SOAK = os.environ.get("FAULTS_SOAK") == "1"
CREATES = 10_000 if SOAK else 1000
CLIENTS = 8
# NATS is killed when this many creates have been answered
RESTART_AFTER = (1000, 3000, 5000, 7000, 9000) if SOAK else (250, 600)


async def test_nats_restarts_under_load_lose_and_duplicate_nothing(
    make_settings, clean_db, nats_manager, nats_server
):
    app = create_tickets_app(make_settings(publish_timeout=1.0), database=clean_db.name)
    statuses: Counter[int] = Counter()
    answered = 0
    restarts = 0

    async with app_client(app) as client:

        async def seller(worker: int) -> None:
            nonlocal answered
            cookies = session_cookie(TEST_JWT_KEY, user_id=str(ObjectId()))
            for n in range(worker, CREATES, CLIENTS):
                response = await client.post(
                    "/api/tickets", json={"title": f"t{n}", "price": 10}, cookies=cookies
                )
                statuses[response.status_code] += 1
                answered += 1

        async def chaos() -> None:
            nonlocal restarts
            for threshold in RESTART_AFTER:
                await eventually(lambda threshold=threshold: answered >= threshold, within=300)
                nats_server.kill()  # SIGKILL: a crash, connections drop mid-publish
                await eventually(lambda: not app.state.context.nats.is_connected, within=60)
                down_at = answered
                await eventually(lambda down_at=down_at: answered >= down_at + 50, within=300)
                nats_server.restart()
                restarts += 1

        await asyncio.gather(chaos(), *(seller(w) for w in range(CLIENTS)))
        await eventually(
            lambda: app.state.context.nats.is_connected and nats_manager.is_connected, within=60
        )
        await eventually(lambda: outbox_drained(clean_db, TICKETS), within=120)

    listener = CountingListener(nats_manager, TicketCreatedEvent, "faults-test-service")
    await listener.start()
    await eventually(lambda: sum(listener.received.values()) >= CREATES, within=120)
    await eventually(lambda: caught_up(nats_manager.jetstream, listener.durable), within=60)
    await listener.stop()

    tickets = {str(d["_id"]) for d in await clean_db.tickets.find({}, {"_id": 1}).to_list()}
    messages = await stream_messages(nats_manager.jetstream, "ticket.created")
    on_stream = Counter(json.loads(m.data)["id"] for m in messages)
    figures = {
        "creates": CREATES,
        "status_201": statuses[201],
        "other_statuses": sum(statuses.values()) - statuses[201],
        "nats_restarts": restarts,
        "tickets_in_mongo": len(tickets),
        "published": len(messages),
        "lost": len(tickets - set(on_stream)),
        "duplicates_on_stream": sum(c - 1 for c in on_stream.values() if c > 1),
        "consumer_received": sum(listener.received.values()),
        "consumer_duplicates": listener.duplicates,
    }
    print("\nRELIABILITY nats-restart-under-load " + json.dumps(figures))
    assert statuses == Counter({201: CREATES})
    assert restarts == len(RESTART_AFTER)
    assert set(on_stream) == tickets and len(tickets) == CREATES
    assert figures["lost"] == 0
    assert figures["duplicates_on_stream"] == 0
    assert set(listener.received) == tickets
    assert figures["consumer_duplicates"] == 0


async def test_mongo_down_gives_a_clear_503_and_recovers_without_restart(
    make_settings, clean_db, nats_manager, mongo_server, recording_nats
):
    app = create_tickets_app(make_settings(), database=clean_db.name, nats=recording_nats)
    cookies = session_cookie(TEST_JWT_KEY)
    async with app_client(app) as client:
        mongo_server.stop()
        try:
            for request in (
                client.get("/api/tickets"),
                client.post("/api/tickets", json={"title": "t", "price": 1}, cookies=cookies),
                client.get(f"/api/tickets/{ObjectId()}"),
            ):
                response = await asyncio.wait_for(request, 60)  # no hang (bounded by the driver)
                assert response.status_code == 503
                assert response.json() == {
                    "errors": [{"message": "Service unavailable, please retry shortly"}]
                }
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["mongo"] is False
        finally:
            mongo_server.restart()
        # the same process recovers by itself once the server is back
        await eventually(lambda: _ready(client), within=60)
        created = await client.post(
            "/api/tickets", json={"title": "t", "price": 1}, cookies=cookies
        )
        assert created.status_code == 201
    print("\nRELIABILITY mongo-down " + json.dumps({"503_answers": 3, "recovered": True}))


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_sigterm_under_load_finishes_in_flight_requests_and_loses_no_acknowledged_write(
    mongo_server, nats_server, mongo_client, tmp_path
):
    service = ServiceProcess(
        "tickets",
        "tickets.main",
        process_env(mongo_server, nats_server),  # its database: "tickets"
        tmp_path,
    ).start()
    acknowledged: list[str] = []
    refused = 0
    cookies = session_cookie(TEST_JWT_KEY)

    async def seller(client: httpx.AsyncClient) -> None:
        nonlocal refused
        for n in range(200):
            try:
                response = await client.post("/api/tickets", json={"title": f"t{n}", "price": 3})
            except httpx.TransportError:
                refused += 1  # the server stopped accepting: fine, nothing was acknowledged
                return
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
            if len(acknowledged) == 100 and service.process is not None:
                service.process.send_signal(signal.SIGTERM)  # mid-load

    async with httpx.AsyncClient(base_url=service.url, cookies=cookies, timeout=30) as client:
        await asyncio.gather(*(seller(client) for _ in range(8)))
    exit_code = service.process.wait(60)
    service.stop()
    stored = {
        str(d["_id"]) for d in await mongo_client["tickets"].tickets.find({}, {"_id": 1}).to_list()
    }
    missing = [ticket for ticket in acknowledged if ticket not in stored]
    print(
        "\nRELIABILITY sigterm-under-load "
        + json.dumps(
            {
                "acknowledged": len(acknowledged),
                "refused_after_sigterm": refused,
                "missing_acknowledged": len(missing),
                "exit_code": exit_code,
            }
        )
    )
    assert exit_code == 0
    assert len(acknowledged) >= 100
    assert missing == []


async def test_a_service_sigkilled_mid_burst_leaves_nothing_unsent_once_it_is_restarted(
    mongo_server, nats_server, nats_manager, mongo_client, tmp_path
):
    """8 clients create; NATS is SIGKILLed (the service answers 201 and keeps the events
    in their documents), then the service itself is SIGKILLed mid-burst, its unsent
    events known only to its writer's row. NATS and a new service process start: it
    adopts the dead writer once its heartbeat has been silent OUTBOX_DEAD_AFTER, and
    every acknowledged create's event is on the stream exactly once."""
    env = process_env(mongo_server, nats_server, OUTBOX_DEAD_AFTER="3", PUBLISH_TIMEOUT="1")
    first = ServiceProcess("tickets", "tickets.main", env, tmp_path / "first").start()
    acknowledged: list[str] = []
    cut_off = 0  # requests that died with the process
    killed: set[str] = set()

    async def seller(client: httpx.AsyncClient, worker: int) -> None:
        nonlocal cut_off
        for n in range(worker, 600, CLIENTS):
            try:
                response = await client.post(
                    "/api/tickets", json={"title": f"burst-{n}", "price": 3}
                )
            except httpx.TransportError:
                cut_off += 1
                return
            assert response.status_code == 201, response.text
            acknowledged.append(response.json()["id"])

    async def chaos() -> None:
        await eventually(lambda: len(acknowledged) >= 150, within=120)
        nats_server.kill()
        killed.add("nats")
        await eventually(lambda: len(acknowledged) >= 300, within=120)
        first.kill()  # SIGKILL, mid-burst
        killed.add("tickets")

    cookies = session_cookie(TEST_JWT_KEY)
    async with httpx.AsyncClient(base_url=first.url, cookies=cookies, timeout=30) as client:
        await asyncio.gather(chaos(), *(seller(client, w) for w in range(CLIENTS)))
    nats_server.restart()
    second = ServiceProcess("tickets", "tickets.main", env, tmp_path / "second").start()
    try:
        await eventually(lambda: nats_manager.is_connected, within=60)

        async def all_sent() -> bool:
            sent = {json.loads(m.data)["id"] for m in await stream_messages(nats_manager.jetstream)}
            return set(acknowledged) <= sent

        await eventually(all_sent, within=90)
        # nothing left unsent by the restarted service: no late duplicate can follow
        await eventually(lambda: outbox_drained(mongo_client["tickets"], TICKETS), within=90)
        messages = await stream_messages(nats_manager.jetstream, "ticket.created")
    finally:
        second.stop()
    on_stream = Counter(json.loads(m.data)["id"] for m in messages)
    stored = {
        str(d["_id"])
        for d in await mongo_client["tickets"]
        .tickets.find({"title": {"$regex": "^burst-"}}, {"_id": 1})
        .to_list()
    }
    figures = {
        "acknowledged": len(acknowledged),
        "cut_off_by_the_kill": cut_off,
        "stored": len(stored),
        "on_stream": len(on_stream),
        "lost_acknowledged": len(set(acknowledged) - set(on_stream)),
        "stored_not_on_stream": len(stored - set(on_stream)),
        "duplicates_on_stream": sum(c - 1 for c in on_stream.values() if c > 1),
    }
    print("\nRELIABILITY sigkill-mid-burst " + json.dumps(figures))
    assert killed == {"nats", "tickets"}
    assert figures["lost_acknowledged"] == 0
    assert figures["stored_not_on_stream"] == 0  # even those whose answer the kill cut off
    assert figures["duplicates_on_stream"] == 0
    assert len(acknowledged) >= 300
