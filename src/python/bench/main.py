"""Benchmark the core path against what the servers underneath allow.

Starts its own nats-server, a MongoDB-wire server (in-memory) per service as deployed,
and the auth, tickets and orders services, each in a process of its own, on loopback,
with the settings `./run` gives them (its database URI, the per-user write budgets);
this process is the load generator (a lean HTTP/1.1 client — see lean_http.py for why
not httpx — PyMongo async, nats-py), its requests spread over `--users` signed-in users
so that none reaches its budget. Each figure is the median of `--repeats` runs after a
warm-up. Prints a table and writes JSON (`--out`).

    ./pants run src/python/bench:bench -- --out dist/benchmarks.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from nats.js.errors import NotFoundError
from pymongo import AsyncMongoClient

from bench.lean_http import LeanClient, cookie_header
from bench.stats import Result, measure, median_result, percentile
from common.auth import SESSION_COOKIE, encode_session, sign_jwt
from common.events import STREAM_NAME, Listener, TicketCreatedEvent
from common.nats_client import NatsClientManager
from harness.servers import MongoServer, NatsServer, ServiceProcess
from tickets.repository import TICKETS, new_document

JWT_KEY = "benchmark-only-jwt-key-0123456789abcdef"  # local throwaway servers only
TICKET = {"title": "Benchmark ticket", "price": 20}
SERVICES = ("auth", "tickets", "orders")
FLOOR = "floor: insert_one + JS publish"
ORDERS_FLOOR = "floor: the same on orders' db"
# as large as a real ticket.created
FLOOR_EVENT = json.dumps(
    {"id": "0" * 24, "version": 0, "title": TICKET["title"], "price": 20, "userId": "0" * 24}
).encode()


Case = tuple[str, Callable[[int], Awaitable[None]]]  # a name and one operation


@dataclass
class DbServer:
    """A database server whose work each run measures: its process's CPU (from /proc)
    and its write counters (`serverStatus`)."""

    pid: int
    client: AsyncMongoClient[Any]

    async def reading(self) -> tuple[float, int]:
        counters = (await self.client.admin.command("serverStatus"))["opcounters"]
        return cpu_seconds(self.pid), counters["insert"] + counters["update"] + counters["delete"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (`/proc/<pid>/stat`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.results: list[Result] = []
        self.extra: dict[str, Any] = {}
        self.js: Any = None  # set once connected: lets each case start on an idle system
        self.mode = ""  # the per-user write budgets "on" (as ./run) or "off" in the runs now going

    async def run_case(
        self,
        name: str,
        op,
        *,
        concurrency: int,
        ops: int | None = None,
        warmup: int | None = None,
        db: DbServer | list[DbServer] | None = None,
        service_pid: int | None = None,
    ) -> Result:
        ops = ops or self.args.ops
        await self.quiesce()
        await measure(name, op, ops=warmup or self.args.warmup, concurrency=concurrency)
        runs = []
        for _ in range(self.args.repeats):
            await self.quiesce()
            runs.append(await self.measured(name, op, ops, concurrency, db, service_pid))
        return self._record(runs)

    async def run_pair(
        self,
        floor: Case,
        service: Case,
        *,
        concurrency: int,
        db: DbServer | None = None,
        service_pid: int | None = None,
    ) -> None:
        """A service case and its floor, their runs interleaved and mirrored (floor,
        service, service, floor, floor, service, ...): whatever drifts during a run (the
        machine) drifts for both, and neither always runs second. `service_pid`: the
        process whose CPU the service case measures."""
        for name, op in (floor, service):
            await self.quiesce()
            await measure(name, op, ops=self.args.warmup, concurrency=concurrency)
        runs: dict[str, list[Result]] = {floor[0]: [], service[0]: []}
        for repeat in range(self.args.repeats):
            for name, op in (floor, service) if repeat % 2 == 0 else (service, floor):
                await self.quiesce()
                pid = service_pid if name == service[0] else None
                runs[name].append(
                    await self.measured(name, op, self.args.ops, concurrency, db, pid)
                )
        for name in runs:
            self._record(runs[name])

    async def measured(
        self,
        name: str,
        op,
        ops: int,
        concurrency: int,
        db: DbServer | list[DbServer] | None,
        service_pid: int | None = None,
    ) -> Result:
        """One run, with the database servers' CPU and writes per operation (summed over
        the servers given: a create with orders copying it writes on both), and the
        service process's CPU per operation."""
        servers = db if isinstance(db, list) else [db] if db else []
        before = [await server.reading() for server in servers]
        service_before = cpu_seconds(service_pid) if service_pid else 0.0
        result = await measure(name, op, ops=ops, concurrency=concurrency)
        result.mode = self.mode
        if service_pid:
            result.service_cpu_ms = (cpu_seconds(service_pid) - service_before) * 1000 / ops
        if servers:
            after = [await server.reading() for server in servers]
            result.db_cpu_ms = (
                sum(a[0] - b[0] for a, b in zip(after, before, strict=True)) * 1000 / ops
            )
            result.db_writes = sum(a[1] - b[1] for a, b in zip(after, before, strict=True)) / ops
        return result

    def _record(self, runs: list[Result]) -> Result:
        result = median_result(runs)
        self.results.append(result)
        db = (
            f"   db {result.db_cpu_ms:5.2f} ms {result.db_writes:5.2f} writes"
            if result.db_cpu_ms is not None and result.db_writes is not None
            else ""
        )
        if result.service_cpu_ms is not None:
            db += f"   service {result.service_cpu_ms:5.2f} ms"
        print(
            f"  {result.name:<34} c={result.concurrency:<3} {result.throughput:8.0f} ops/s   "
            f"p50 {result.p50_ms:6.2f} ms  p95 {result.p95_ms:6.2f}  p99 {result.p99_ms:6.2f}{db}",
            flush=True,
        )
        return result

    async def quiesce(self) -> None:
        """Wait until the listeners downstream have handled what earlier runs caused
        (orders copies every ticket, tickets reserves every order), so a run does not pay
        for the previous one's events. (Nothing else trails a request: the outbox
        writes no clear after the fact.)"""
        if self.js is not None:
            await listeners_idle(self.js, *DOWNSTREAM)


DOWNSTREAM = ("orders-ticket-created", "orders-ticket-updated", "tickets-order-created")


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(args, Path(tempfile.mkdtemp(prefix="ticketing-bench-")))
    for mode in args.modes:
        await bench_mode(bench, mode, full=mode == args.modes[-1])
    return report(bench)


async def bench_mode(bench: Bench, mode: str, *, full: bool) -> None:
    """Every write and read case with the per-user write budgets `mode` ("on": as `./run`
    runs them, its defaults; "off": switched off, for comparison), on new servers and
    services, with the services' own database URI (`./run`'s). `full`: also the cases
    no write is in (list, httpx client, event latency) and the long run of creates."""
    print(f"write budgets {mode}:", flush=True)
    bench.mode = mode
    workdir = bench.workdir / mode
    nats_server = NatsServer(workdir / "nats").start()
    nats_url = nats_server.url
    # A database server per service, as deployed (each service owns its database).
    servers = {name: MongoServer(workdir / f"mongo-{name}").start() for name in SERVICES}
    uris = {name: server.uri for name, server in servers.items()}  # type: ignore[attr-defined]
    common = {"JWT_KEY": JWT_KEY, "COOKIE_SECURE": "false", "NATS_URL": nats_url}
    if bench.args.traces == "on":  # ./run keeps every trace (./run traces)
        common["TRACES_DIR"] = str(workdir / "traces")
    if mode == "off":
        common |= {"USER_WRITES_PER_MINUTE": "0", "USER_WRITES_PER_DAY": "0"}
    # thousands of orders are placed and none paid: the unpaid-order cap (3 per user) is
    # off (0); everything else is as ./run sets it
    own = {"orders": {"MAX_UNPAID_ORDERS_PER_USER": "0"}}
    auth, tickets, orders = (
        ServiceProcess(
            name,
            f"{name}.main",
            {**common, "MONGO_URI": uris[name], **own.get(name, {})},
            workdir / name,
        )
        for name in SERVICES
    )
    auth.start()
    tickets.start()
    # orders starts after the tickets cases (see run_all): a ticket's floor has no consumer.
    services = {"auth": auth, "tickets": tickets, "orders": orders}
    try:
        await run_all(
            bench,
            {name: (uris[name], servers[name].process.pid) for name in ("tickets", "orders")},  # type: ignore[union-attr]
            nats_url,
            tickets.url,  # type: ignore[attr-defined]
            start_orders=lambda: orders.start().url,  # type: ignore[attr-defined]
            pid_of=lambda name: services[name].process.pid,  # type: ignore[union-attr]
            full=full,
        )
        bench.extra.setdefault("rss_mib", {})[mode] = {
            name: rss_mib(p.process.pid) for name, p in services.items()  # type: ignore[union-attr]
        }
    finally:
        for process in (orders, tickets, auth, *servers.values(), nats_server):
            process.stop()


@dataclass
class Targets:
    """What the cases run against: the services, the servers and a signed-in client."""

    http: LeanClient
    mongo: AsyncMongoClient[Any]  # the tickets service's database server
    orders_mongo: AsyncMongoClient[Any]
    js: Any
    user_id: str
    users: list[str]  # a Cookie header line per signed-in user; requests take turns
    tickets_db: DbServer  # the servers behind them, whose work each run measures
    orders_db: DbServer
    pid_of: Callable[[str], int]  # a service's process, whose CPU each run measures

    def user(self, i: int) -> str:
        return self.users[i % len(self.users)]


async def run_all(
    bench: Bench,
    databases: dict[str, tuple[str, int]],  # service -> (its database's URI, server pid)
    nats_url: str,
    tickets_url: str,
    start_orders: Callable[[], str],
    pid_of: Callable[[str], int],  # a running service's process id
    *,
    full: bool,
) -> None:
    """The tickets cases run against auth and tickets alone, as the floor (an insert and
    a publish that nobody consumes) and the original's figures do; then orders starts
    (it copies every ticket into its replica, through the same database server and
    cores) for one more create case and the order cases."""
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(databases["tickets"][0])
    orders_mongo: AsyncMongoClient[Any] = AsyncMongoClient(databases["orders"][0])
    manager = NatsClientManager()
    await manager.connect(nats_url, "bench")
    await manager.ensure_stream()
    user_ids = [str(ObjectId()) for _ in range(bench.args.users)]
    users = [session_cookie(user_id) for user_id in user_ids]
    user_id = user_ids[0]
    cookies = {SESSION_COOKIE: encode_session(sign_jwt(user_id, "bench@test.com", JWT_KEY))}
    async with LeanClient(tickets_url, cookies) as http:
        targets = Targets(
            http,
            mongo,
            orders_mongo,
            manager.jetstream,
            user_id,
            users,
            DbServer(databases["tickets"][1], mongo),
            DbServer(databases["orders"][1], orders_mongo),
            pid_of,
        )
        bench.js = manager.jetstream
        print("core path (median of repeats):", flush=True)
        await create_cases(bench, targets)
        await read_cases(bench, targets)
        if full:
            await httpx_read_case(bench, targets, tickets_url)
            await list_cases(bench, targets)
        await long_case(bench, targets)
        orders_url = start_orders()
        await bench.run_case(
            "POST /api/tickets (+ orders replica)",
            create_ticket(targets),
            concurrency=1,
            db=[targets.tickets_db, targets.orders_db],
        )
        async with LeanClient(orders_url, cookies) as orders:
            await order_cases(bench, targets, orders)
            bench.extra.setdefault("reserved_latency_ms", {})[bench.mode] = await reserved_latency(
                targets, orders, bench.args.events // 5
            )
        print(
            "  order placed → ticket shows reserved: "
            f"p50 {bench.extra['reserved_latency_ms'][bench.mode]['p50']:.2f} ms"
            f"  p99 {bench.extra['reserved_latency_ms'][bench.mode]['p99']:.2f} ms",
            flush=True,
        )
    if full:
        bench.extra["event_latency_ms"] = await event_latency(manager, bench.args.events)
        print(
            "  event publish → listener handler: "
            f"p50 {bench.extra['event_latency_ms']['p50']:.2f} ms"
            f"  p99 {bench.extra['event_latency_ms']['p99']:.2f} ms",
            flush=True,
        )
    await manager.drain()
    await mongo.close()
    await orders_mongo.close()


async def create_cases(bench: Bench, t: Targets) -> None:
    """POST /api/tickets against its floor: one insert_one and one acked publish."""
    floor = insert_and_publish(t.mongo["bench_floor"], t.js)
    for concurrency in (1, 16):
        await bench.run_pair(
            (FLOOR, floor),
            ("POST /api/tickets", create_ticket(t)),
            concurrency=concurrency,
            db=t.tickets_db,
            service_pid=t.pid_of("tickets"),
        )


def insert_and_publish(db: Any, js: Any) -> Callable[[int], Awaitable[None]]:
    """The floor of a create: one insert_one of a ticket document as the service stores
    it (without its pending event) and one acked JetStream publish."""

    async def floor(i: int) -> None:
        doc = new_document(TICKET["title"], TICKET["price"] * 100, "0" * 24)
        await db.docs.insert_one(doc)
        await js.publish(  # in the stream, consumed by no service
            "ticket.bench-floor", FLOOR_EVENT, headers={"Nats-Msg-Id": f"floor:{doc['_id']}"}
        )

    return floor


def session_cookie(user_id: str) -> str:
    token = sign_jwt(user_id, f"{user_id}@bench.test", JWT_KEY)
    return cookie_header({SESSION_COOKIE: encode_session(token)})


def create_ticket(t: Targets) -> Callable[[int], Awaitable[None]]:
    async def create(i: int) -> None:
        response = await t.http.post("/api/tickets", json=TICKET, cookie=t.user(i))
        assert response.status_code == 201, response.text

    return create


async def long_case(bench: Bench, t: Targets) -> None:
    """`--long` creates in a row (c=1), as a local stack takes them over its life: the
    throughput of each 1,000 must not fall as the database fills."""
    count = bench.args.long
    if count <= 0:
        return
    await bench.quiesce()
    create, per_thousand = create_ticket(t), []
    started = time.perf_counter()
    for i in range(count):
        await create(i)
        if (i + 1) % 1000 == 0:
            now = time.perf_counter()
            per_thousand.append(1000 / (now - started))
            started = now
    # the last quarter's mean against the first's: one 1,000 alone is noisy (±15 %)
    quarter = max(1, len(per_thousand) // 4)
    first, last = (
        statistics.mean(part) for part in (per_thousand[:quarter], per_thousand[-quarter:])
    )
    bench.extra.setdefault("long_creates", {})[bench.mode] = {
        "creates": count,
        "per_thousand_ops_s": per_thousand,
        "last_vs_first_quarter": last / first,
    }
    print(
        f"  {count} creates in a row, ops/s per 1,000: "
        + " ".join(f"{rate:.0f}" for rate in per_thousand)
        + f"  (last quarter / first: {last / first:.2f})",
        flush=True,
    )


async def read_cases(bench: Bench, t: Targets) -> None:
    """GET /api/tickets/{id} against its floor: a bare find_one by id."""
    tickets = t.mongo["tickets"][TICKETS]
    ids = await some_ticket_ids(t)
    for concurrency in (1, 16):

        async def find_one(i: int) -> None:
            assert await tickets.find_one({"_id": ids[i % len(ids)]})

        async def show(i: int) -> None:
            response = await t.http.get(f"/api/tickets/{ids[i % len(ids)]}")
            assert response.status_code == 200

        await bench.run_pair(
            ("floor: find_one", find_one),
            ("GET /api/tickets/{id}", show),
            concurrency=concurrency,
            db=t.tickets_db,
            service_pid=t.pid_of("tickets"),
        )


async def some_ticket_ids(t: Targets) -> list[Any]:
    """Ids of up to 500 stored tickets, for the reads to cycle through."""
    docs = await t.mongo["tickets"][TICKETS].find({}, {"_id": 1}).limit(500).to_list()
    return [d["_id"] for d in docs]


async def httpx_read_case(bench: Bench, t: Targets, tickets_url: str) -> None:
    """The read again with httpx as the client, for comparison: how much of a figure is
    the load generator's own cost (see lean_http.py)."""
    ids = await some_ticket_ids(t)
    async with httpx.AsyncClient(base_url=tickets_url, timeout=30) as http:

        async def show(i: int) -> None:
            response = await http.get(f"/api/tickets/{ids[i % len(ids)]}")
            assert response.status_code == 200

        await bench.run_case("GET /api/tickets/{id} (httpx client)", show, concurrency=1)


async def list_cases(bench: Bench, t: Targets) -> None:
    """The first page of GET /api/tickets with 10,000 tickets stored."""
    tickets = t.mongo["tickets"][TICKETS]
    stored = await tickets.count_documents({})
    await add_tickets(t.mongo, max(0, 10_000 - stored), t.user_id)
    bench.extra["tickets_stored_for_list"] = await tickets.count_documents({})

    async def list_page(i: int) -> None:
        response = await t.http.get("/api/tickets")
        assert response.status_code == 200 and len(response.json()) == 50

    for concurrency in (1, 16):
        await bench.run_case(
            "GET /api/tickets (first page, 10k)",
            list_page,
            concurrency=concurrency,
            ops=bench.args.list_ops,
            warmup=max(1, bench.args.list_ops // 5),
        )


async def tickets_to_order(t: Targets, count: int) -> list[str]:
    """`count` tickets of another seller, in the tickets service AND in orders' replica (as
    if ticket.created had been handled), so an order's effects are the real ones."""
    seller = str(ObjectId())
    docs = [new_document(f"To order {n}", 1500, seller) for n in range(count)]
    await t.mongo["tickets"][TICKETS].insert_many(docs)
    replica = [
        {
            "_id": str(d["_id"]),
            "title": d["title"],
            "priceCents": 1500,
            "userId": seller,
            "version": 0,
        }
        for d in docs
    ]
    await t.orders_mongo["orders"]["tickets"].insert_many(replica)
    return [r["_id"] for r in replica]


async def order_cases(bench: Bench, t: Targets, orders: LeanClient) -> None:
    """POST /api/orders (reserve one ticket, record order.created) against the same kind
    of floor as a create, on the orders service's database server."""
    per_case = bench.args.warmup + bench.args.ops * bench.args.repeats
    for concurrency in (1, 16):
        ticket_ids = iter(await tickets_to_order(t, per_case))

        async def order(i: int, ticket_ids=ticket_ids) -> None:
            body = {"ticketId": next(ticket_ids)}
            response = await orders.post("/api/orders", json=body, cookie=t.user(i))
            assert response.status_code == 201, response.text

        await bench.run_pair(
            (ORDERS_FLOOR, insert_and_publish(t.orders_mongo["bench_floor"], t.js)),
            ("POST /api/orders", order),
            concurrency=concurrency,
            db=t.orders_db,
            service_pid=t.pid_of("orders"),
        )


async def reserved_latency(t: Targets, orders: LeanClient, count: int) -> dict[str, float]:
    """From sending POST /api/orders to the ticket showing its `orderId` in the tickets
    service: across two services and the stream (order.created → tickets reserves)."""
    await listeners_idle(t.js, *DOWNSTREAM)
    latencies = []
    for ticket_id in await tickets_to_order(t, count):
        await asyncio.sleep(0.02)  # one at a time: latency, not queueing
        started = time.perf_counter()
        placed = await orders.post("/api/orders", json={"ticketId": ticket_id}, cookie=t.user(0))
        order_id = placed.json()["id"]
        while (await t.http.get(f"/api/tickets/{ticket_id}")).json().get("orderId") != order_id:
            await asyncio.sleep(0.001)
        latencies.append(time.perf_counter() - started)
    return {
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "orders": count,
    }


async def listeners_idle(js: Any, *durables: str, within: float = 600) -> None:
    """Wait until these consumers have handled everything (the order cases leave a
    backlog: orders are accepted faster than the listeners downstream apply them)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all([await consumer_idle(js, durable) for durable in durables]):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{durables} still busy after {within}s")


async def consumer_idle(js: Any, durable: str) -> bool:
    try:
        info = await js.consumer_info(STREAM_NAME, durable)
    except NotFoundError:
        return True  # its service is not running (yet): nothing waits on it
    return info.num_pending == 0 and info.num_ack_pending == 0


async def add_tickets(mongo: AsyncMongoClient[Any], count: int, user_id: str) -> None:
    docs = [new_document(f"Stored {n}", 1000 + n, user_id) for n in range(count)]
    for start in range(0, len(docs), 1000):
        await mongo["tickets"][TICKETS].insert_many(docs[start : start + 1000])


class TimingListener(Listener[TicketCreatedEvent]):
    event = TicketCreatedEvent
    poll_seconds = 5.0

    def __init__(self, nats: NatsClientManager, sent: dict[str, float]) -> None:
        super().__init__(nats, "bench-service")
        self.sent = sent
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.expected = 0

    async def on_message(self, data: TicketCreatedEvent, msg) -> None:
        started = self.sent.pop(data.id, None)
        if started is not None:
            self.latencies.append(time.perf_counter() - started)
            if len(self.latencies) >= self.expected:
                self.done.set()


async def event_latency(manager: NatsClientManager, count: int) -> dict[str, float]:
    """From `publish()` being called to the durable listener's handler being entered."""
    js = manager.jetstream
    # only these events on the stream; purged, not deleted and made again: a service
    # that finds the stream missing in between makes it itself, with its own limits,
    # and a second add then fails ("already in use with a different configuration")
    await js.purge_stream(STREAM_NAME)
    sent: dict[str, float] = {}
    listener = TimingListener(manager, sent)
    listener.expected = count
    await listener.start()
    for n in range(count):
        ticket_id = f"evt{n}"
        sent[ticket_id] = time.perf_counter()
        payload = json.dumps(
            {"id": ticket_id, "version": 0, "title": "t", "price": 1, "userId": "u"}
        )
        await js.publish("ticket.created", payload.encode(), headers={"Nats-Msg-Id": ticket_id})
        await asyncio.sleep(0.002)  # one at a time: latency, not queueing
    await asyncio.wait_for(listener.done.wait(), 60)
    await listener.stop()
    return {
        "p50": percentile(listener.latencies, 0.5) * 1000,
        "p99": percentile(listener.latencies, 0.99) * 1000,
        "events": count,
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


PAIRS = {  # a service case and its floor
    "create": ("POST /api/tickets", FLOOR),
    "order": ("POST /api/orders", ORDERS_FLOOR),
    "read": ("GET /api/tickets/{id}", "floor: find_one"),
}


def ratios_of(bench: Bench, mode: str) -> dict[str, float]:
    """Each service case against its floor: throughput, p99 (read), and the database
    server's CPU and writes per operation (create, order)."""
    by_key = {(r.name, r.concurrency): r for r in bench.results if r.mode == mode}
    ratios: dict[str, float] = {}
    for concurrency in (1, 16):
        for label, (service_name, floor_name) in PAIRS.items():
            service, floor = by_key[(service_name, concurrency)], by_key[(floor_name, concurrency)]
            ratios[f"{label}_vs_floor_c{concurrency}"] = service.throughput / floor.throughput
            if label == "read":
                ratios[f"read_p99_vs_floor_c{concurrency}"] = service.p99_ms / floor.p99_ms
            elif service.db_cpu_ms and floor.db_cpu_ms and service.db_writes is not None:
                ratios[f"{label}_db_cpu_vs_floor_c{concurrency}"] = (
                    service.db_cpu_ms / floor.db_cpu_ms
                )
                ratios[f"{label}_db_writes_per_op_c{concurrency}"] = service.db_writes
    with_replica = by_key[("POST /api/tickets (+ orders replica)", 1)]
    ratios["create_with_orders_replica_vs_floor_c1"] = (
        with_replica.throughput / by_key[(FLOOR, 1)].throughput
    )
    if with_replica.db_writes is not None:  # on both databases: ./run has them on one server
        ratios["create_with_orders_replica_db_writes_per_op_c1"] = with_replica.db_writes
    httpx_read = by_key.get(("GET /api/tickets/{id} (httpx client)", 1))
    if httpx_read:
        ratios["read_httpx_client_vs_find_one_c1"] = (
            httpx_read.throughput / by_key[("floor: find_one", 1)].throughput
        )
    return ratios


def report(bench: Bench) -> dict[str, Any]:
    ratios = {mode: ratios_of(bench, mode) for mode in bench.args.modes}
    rows = [
        f"{'case':<36}{'budget':>7}{'conc':>5}{'ops/s':>8}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'p99 ms':>8}{'db ms/op':>9}{'writes/op':>10}{'svc ms/op':>10}"
    ]
    rows += [
        f"{r.name:<36}{r.mode:>7}{r.concurrency:>5}{r.throughput:>8.0f}{r.p50_ms:>8.2f}"
        f"{r.p95_ms:>8.2f}{r.p99_ms:>8.2f}"
        + (f"{r.db_cpu_ms:>9.2f}{r.db_writes:>10.2f}" if r.db_cpu_ms is not None else "")
        + (f"{r.service_cpu_ms:>10.2f}" if r.service_cpu_ms is not None else "")
        for r in bench.results
    ]
    rows.append("")
    for mode, figures in ratios.items():
        rows += [f"write budgets {mode}: {k:<40}{v:>7.2f}" for k, v in figures.items()]
    for mode, reserved in bench.extra["reserved_latency_ms"].items():
        rows.append(
            f"write budgets {mode}: order placed → ticket reserved"
            f"  p50 {reserved['p50']:.2f} ms  p99 {reserved['p99']:.2f} ms"
        )
    for mode, long in bench.extra.get("long_creates", {}).items():
        rows.append(
            f"write budgets {mode}: {long['creates']} creates in a row, ops/s per 1,000: "
            + " ".join(f"{rate:.0f}" for rate in long["per_thousand_ops_s"])
            + f" (last quarter / first: {long['last_vs_first_quarter']:.2f})"
        )
    events = bench.extra["event_latency_ms"]
    rows.append(
        f"event latency (publish → handler)  p50 {events['p50']:.2f} ms  p99 {events['p99']:.2f} ms"
    )
    for mode, rss in bench.extra["rss_mib"].items():
        rows.append(
            f"RSS after the {mode} runs: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in rss.items())
        )
    print("\n" + "\n".join(rows), flush=True)
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "settings": {k: v for k, v in vars(bench.args).items() if k != "out"},
        "results": [r.as_dict() for r in bench.results],
        "ratios": ratios,
        **bench.extra,
        "table": "\n".join(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the Ticketing core path.")
    parser.add_argument("--ops", type=int, default=1000, help="operations per measured run")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--list-ops", type=int, default=60, help="list requests per run (slow)")
    parser.add_argument(
        "--modes",
        type=lambda text: text.split(","),
        default=["on"],
        help="the per-user write budgets on (as ./run runs them) and/or off, in this order",
    )
    parser.add_argument(
        "--users", type=int, default=512, help="signed-in users the requests take turns as"
    )
    parser.add_argument(
        "--traces",
        choices=["on", "off"],
        default="on",
        help="the services keep every trace in files, as ./run does (on), or export none",
    )
    parser.add_argument(
        "--long", type=int, default=20_000, help="creates in a row for the long case (0: none)"
    )
    parser.add_argument("--out", type=Path, default=Path("dist/benchmarks.json"))
    args = parser.parse_args()
    data = asyncio.run(benchmark(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
