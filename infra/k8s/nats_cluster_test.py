"""The production topology's promise, on this machine: with the stream on three
clustered nats-servers (3 replicas, as infra/k8s runs it), SIGKILLing the node that
leads the stream under load loses nothing, duplicates nothing, and restarts no service.

Loopback only: three `nats-server` processes routed to each other, the services as
real processes pointed at all three (NATS_URL lists them, STREAM_REPLICAS=3).
Prints its figures (Pants' test output) for RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.errors import Error as NatsError

from common.events import STREAM_NAME, TicketCreatedEvent, TicketUpdatedEvent
from common.events.contracts import ticketing_stream
from common.nats_client import NatsClientManager
from harness.servers import LOOPBACK, MongoServer, NatsCluster, ServiceProcess
from orders.repository import ORDERS
from testkit.auth import TEST_JWT_KEY, session_cookie
from testkit.streams import CountingListener, caught_up, outbox_drained, stream_payloads
from testkit.waiting import eventually
from tickets.repository import TICKETS

CREATES = 1000
ORDERS_PLACED = 400
CLIENTS = 8
KILL_AT = 0.1  # of the requests answered
# Requests per second from all clients together: a steady load that runs before,
# during and after the failover (an election takes seconds; unpaced, the requests
# would all be answered before it ends)
CREATE_RATE, ORDER_RATE = 50, 25


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats").start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def nats(cluster: NatsCluster) -> AsyncIterator[NatsClientManager]:
    """The test's own client, on the cluster; it makes the stream with 3 replicas."""
    manager = NatsClientManager(ticketing_stream(replicas=3))
    await manager.connect(cluster.url, "cluster-test")
    info = await manager.ensure_stream()  # waits out the cluster's first election
    assert info.config.num_replicas == 3
    yield manager
    await manager.drain()


@pytest.fixture
def start_service(
    mongo_server: MongoServer, cluster: NatsCluster, mongo_client: Any, tmp_path: Path
) -> Iterator[Callable[[str], Awaitable[ServiceProcess]]]:
    started: list[ServiceProcess] = []

    async def start(name: str) -> ServiceProcess:
        await mongo_client.drop_database(name)  # its database: the service's name
        env = {
            "MONGO_URI": mongo_server.uri,
            "NATS_URL": cluster.url,
            "STREAM_REPLICAS": "3",
            "JWT_KEY": TEST_JWT_KEY,
            "COOKIE_SECURE": "false",
            "OUTBOX_INTERVAL": "0.2",
            "MAX_UNPAID_ORDERS_PER_USER": "0",  # (orders) one buyer places every order
        }
        service = ServiceProcess(name, f"{name}.main", env, tmp_path / name)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


async def test_services_scale_the_stream_up_to_their_replicas_and_never_down(cluster, nats):
    one_copy = NatsClientManager(ticketing_stream(replicas=1))
    await one_copy.connect(cluster.url, "one-copy")
    try:
        await nats.jetstream.delete_stream(STREAM_NAME)
        assert (await one_copy.ensure_stream()).config.num_replicas == 1
        assert (await nats.ensure_stream()).config.num_replicas == 3  # scaled up in place
        assert (await one_copy.ensure_stream()).config.num_replicas == 3  # kept
    finally:
        await one_copy.drain()


async def test_a_new_stream_waits_for_the_node_that_joins_last(tmp_path):
    """As when a namespace comes up and one NATS pod starts late: two nodes are too few
    to place 3 replicas ("no suitable peers for placement"); the service waits."""
    cluster = NatsCluster(tmp_path)
    late = cluster.nodes[2]
    for node in cluster.nodes[:2]:
        node.start()
    manager = NatsClientManager(ticketing_stream(replicas=3))
    try:
        await manager.connect(",".join(node.url for node in cluster.nodes[:2]), "early")
        creating = asyncio.create_task(manager.ensure_stream())
        await asyncio.sleep(3)
        assert not creating.done()  # still waiting, not failed
        late.start()
        info = await asyncio.wait_for(creating, 60)
        assert info.config.num_replicas == 3
    finally:
        await manager.drain()
        cluster.stop()


async def test_with_one_servers_url_the_client_fails_over_to_the_nodes_it_learnt(tmp_path):
    cluster = NatsCluster(tmp_path, 3, "--user", "tickets", "--pass", "s3cret").start()
    first = cluster.nodes[0]
    manager = NatsClientManager()
    try:
        await manager.connect(f"nats://tickets:s3cret@{LOOPBACK}:{first.port}", "learner")
        others = {node.port for node in cluster.nodes[1:]}
        await eventually(lambda: others <= {s.port for s in manager.client.discovered_servers})
        first.kill()  # the only URL it was given: the others are learnt, without password
        await eventually(lambda: _connected_elsewhere(manager, first.port), within=30)
    finally:
        await manager.drain()
        cluster.stop()


def _connected_elsewhere(manager: NatsClientManager, port: int | None) -> bool:
    url = manager.client.connected_url if manager.is_connected else None
    return url is not None and url.port != port


async def stream_leader(nats: NatsClientManager) -> str:
    """The node leading the stream now ("" while none is: the nodes are electing one,
    which takes seconds after a leader dies; requests meanwhile time out)."""
    try:
        info = await asyncio.wait_for(nats.jetstream.stream_info(STREAM_NAME), 1)
    except (NatsError, TimeoutError):
        return ""
    return (info.cluster.leader or "") if info.cluster else ""


async def replicas_current(nats: NatsClientManager) -> bool:
    """Every follower of the stream has caught up with its leader."""
    info = await nats.jetstream.stream_info(STREAM_NAME)
    followers = (info.cluster.replicas or []) if info.cluster else []
    return len(followers) == 2 and all(peer.current and not peer.offline for peer in followers)


class LeaderKiller:
    """SIGKILLs the stream's leader once `KILL_AT` of the requests are answered, and
    starts it again (same port, same store) as soon as another node leads the stream,
    as Kubernetes would restart its pod; the load goes on throughout."""

    def __init__(self, cluster: NatsCluster, nats: NatsClientManager, total: int) -> None:
        self.cluster, self.nats, self.total = cluster, nats, total
        self.answered = 0
        self.killed = self.new_leader = ""
        self.failover = 0.0  # seconds from the kill until another node leads the stream
        self.answered_at: dict[str, int] = {}
        self.slowest = 0.0  # seconds: the longest request, i.e. the failover as users see it

    def answer(self, started: float) -> None:
        self.answered += 1
        self.slowest = max(self.slowest, time.monotonic() - started)

    async def run(self) -> None:
        await eventually(lambda: self.answered >= self.total * KILL_AT, within=300)
        await eventually(self._leader_known, within=60)
        self.cluster.node(self.killed).kill()
        self.answered_at["kill"] = self.answered
        killed_at = time.monotonic()
        await eventually(self._elected, within=60)
        self.failover = time.monotonic() - killed_at
        self.cluster.node(self.killed).restart()
        self.answered_at["restart"] = self.answered

    async def _leader_known(self) -> bool:
        self.killed = await stream_leader(self.nats)
        return self.killed != ""

    async def _elected(self) -> bool:
        self.new_leader = await stream_leader(self.nats)
        return self.new_leader not in ("", self.killed)

    def figures(self) -> dict[str, Any]:
        return {
            "killed_leader": self.killed,
            "new_leader": self.new_leader,
            "leader_elected_after_s": round(self.failover, 1),
            "answered_at_kill": self.answered_at["kill"],
            "answered_at_restart": self.answered_at["restart"],
            "slowest_request_s": round(self.slowest, 2),
        }


async def test_killing_the_stream_leader_under_1000_creates_loses_and_duplicates_nothing(
    cluster, nats, start_service, mongo_client
):
    listener = CountingListener(nats, TicketCreatedEvent, "cluster-test-service")
    await listener.start()  # its durable consumer is replicated too: it lives through
    tickets = await start_service("tickets")
    pid = tickets.process.pid
    killer = LeaderKiller(cluster, nats, CREATES)
    statuses: Counter[int] = Counter()

    async def seller(worker: int) -> None:
        cookies = session_cookie(TEST_JWT_KEY)
        async with httpx.AsyncClient(base_url=tickets.url, cookies=cookies, timeout=60) as http:
            for n in range(worker, CREATES, CLIENTS):
                started = time.monotonic()
                response = await http.post("/api/tickets", json={"title": f"t{n}", "price": 5})
                statuses[response.status_code] += 1
                killer.answer(started)
                await asyncio.sleep(CLIENTS / CREATE_RATE)

    await asyncio.gather(killer.run(), *(seller(w) for w in range(CLIENTS)))
    db = mongo_client["tickets"]
    await eventually(lambda: outbox_drained(db, TICKETS), within=120)
    await eventually(lambda: sum(listener.received.values()) >= CREATES, within=120)
    await eventually(lambda: replicas_current(nats), within=120)  # the node caught up
    await eventually(lambda: caught_up(nats.jetstream, listener.durable), within=60)
    await listener.stop()  # (caught up: a duplicate on the stream has reached it)

    stored = {str(doc["_id"]) for doc in await db.tickets.find({}, {"_id": 1}).to_list()}
    on_stream = Counter(e["id"] for e in await stream_payloads(nats.jetstream, "ticket.created"))
    figures = {
        "creates": CREATES,
        "status_201": statuses[201],
        **killer.figures(),
        "events_left_to_the_relay": left_to_the_relay(tickets),
        "tickets_in_mongo": len(stored),
        "events_on_stream": sum(on_stream.values()),
        "lost": len(stored - set(on_stream)),
        "duplicates_on_stream": sum(n - 1 for n in on_stream.values()),
        "consumer_received": sum(listener.received.values()),
        "consumer_duplicates": listener.duplicates,
        "redeliveries_acked_unhandled": listener.outcomes["redelivery_skipped"],
        "service_restarts": 0 if tickets.running and tickets.process.pid == pid else 1,
    }
    print("\nRELIABILITY nats-leader-killed-under-creates " + json.dumps(figures))
    assert statuses == Counter({201: CREATES})
    assert killer.new_leader not in ("", killer.killed)
    assert len(stored) == CREATES and set(on_stream) == stored
    assert figures["duplicates_on_stream"] == 0
    assert set(listener.received) == stored and listener.duplicates == 0
    assert figures["service_restarts"] == 0


async def test_killing_the_stream_leader_while_orders_reserve_tickets_reserves_each_once(
    cluster, nats, start_service, mongo_client
):
    reservations = CountingListener(
        nats, TicketUpdatedEvent, "cluster-test-service", key=lambda e: e.orderId
    )
    await reservations.start()
    tickets = await start_service("tickets")
    orders = await start_service("orders")
    seller = session_cookie(TEST_JWT_KEY)
    async with httpx.AsyncClient(base_url=tickets.url, cookies=seller, timeout=60) as http:
        listed = [
            (await http.post("/api/tickets", json={"title": f"t{n}", "price": 5})).json()["id"]
            for n in range(ORDERS_PLACED)
        ]
    known = mongo_client["orders"].tickets  # the orders service's copy of the tickets
    await eventually(lambda: _count(known, {}, ORDERS_PLACED), within=120)

    killer = LeaderKiller(cluster, nats, ORDERS_PLACED)
    placed: dict[str, str] = {}  # order id -> ticket id
    statuses: Counter[int] = Counter()

    async def buyer(worker: int) -> None:
        async with httpx.AsyncClient(
            base_url=orders.url, cookies=session_cookie(TEST_JWT_KEY), timeout=60
        ) as http:
            for ticket_id in listed[worker::CLIENTS]:
                started = time.monotonic()
                response = await http.post("/api/orders", json={"ticketId": ticket_id})
                statuses[response.status_code] += 1
                if response.status_code == 201:
                    placed[response.json()["id"]] = ticket_id
                killer.answer(started)
                await asyncio.sleep(CLIENTS / ORDER_RATE)

    await asyncio.gather(killer.run(), *(buyer(w) for w in range(CLIENTS)))
    await eventually(lambda: len(reservations.received) >= len(placed), within=120)
    # orders heard every reservation back: its copies are at version 1
    await eventually(lambda: _count(known, {"version": 1}, ORDERS_PLACED), within=120)
    await eventually(lambda: outbox_drained(mongo_client["orders"], ORDERS), within=60)
    await eventually(lambda: replicas_current(nats), within=120)
    await eventually(lambda: caught_up(nats.jetstream, reservations.durable), within=60)
    await reservations.stop()  # (caught up: a duplicate on the stream has reached it)

    reserved = {
        str(doc["_id"]): doc.get("orderId")
        for doc in await mongo_client["tickets"].tickets.find({}, {"orderId": 1}).to_list()
    }
    updates = await stream_payloads(nats.jetstream, "ticket.updated")
    on_stream = Counter(event["orderId"] for event in updates)
    figures = {
        "orders": ORDERS_PLACED,
        "status_201": statuses[201],
        **killer.figures(),
        "events_left_to_the_relay": left_to_the_relay(tickets) + left_to_the_relay(orders),
        "reservations_on_stream": sum(on_stream.values()),
        "reservations_received": sum(reservations.received.values()),
        "duplicates_on_stream": sum(n - 1 for n in on_stream.values()),
        "consumer_duplicates": reservations.duplicates,
        "redeliveries_acked_unhandled": reservations.outcomes["redelivery_skipped"],
        "service_restarts": sum(not s.running for s in (tickets, orders)),
    }
    print("\nRELIABILITY nats-leader-killed-under-orders " + json.dumps(figures))
    assert statuses == Counter({201: ORDERS_PLACED})
    assert killer.new_leader not in ("", killer.killed)
    assert {reserved[ticket]: ticket for ticket in placed.values()} == placed
    assert set(on_stream) == set(placed) and figures["duplicates_on_stream"] == 0
    assert set(reservations.received) == set(placed) and reservations.duplicates == 0
    assert figures["service_restarts"] == 0


def left_to_the_relay(service: ServiceProcess) -> int:
    """Creates whose event the request could not publish (no leader): the relay's."""
    return service.log_path.read_text().count("left to the relay")


async def _count(collection: Any, query: dict[str, Any], expected: int) -> bool:
    return await collection.count_documents(query) >= expected
