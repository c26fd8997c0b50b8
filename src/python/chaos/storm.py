"""A seeded storm: many users buying and selling on the real local stack while faults
from the seed's schedule hit it; then quiesce and check every invariant.

    ./pants run src/python/chaos:storm -- --seed 7 --minutes 2

The stack is `./run`'s, without the gateway and the web client: nats-server, one
MongoDB-wire server (a database per service), the five services as processes, on
loopback. The users sign up, sell, edit, browse, order, pay (good and declined cards),
cancel, let orders expire, and race: pay ∥ cancel, edit ∥ order, two buyers on one
ticket. The faults (`chaos.schedule`): a service killed and restarted, a server or a
service paused, nats-server restarted, a service slowed, the payment provider failing
or losing its answers. Afterwards everything is resumed, the storm waits until every
listener has caught up, and `chaos.invariants` checks the services' states, the
provider's ledger and the stream; so does every service's `/readyz`, and no answer may
have been a 500. Exit 1 on any violation, each printed by name with its ids.

    ./pants run src/python/chaos:storm -- --seed 7 --faults 12.5:kill:orders:2.0,...

replays a schedule (the seed still draws the users' choices); `--shrink` narrows a
failing seed's schedule to the fewest faults that still fail (`chaos.shrink`) and
prints the command that replays it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
from pymongo import AsyncMongoClient

from chaos import invariants
from chaos.schedule import SERVICES, Fault, parse_faults, schedule, write_faults
from chaos.shrink import shorter_storm, smallest_failing
from harness.servers import MongoServer, NatsServer, ServerProcess, ServiceProcess

JWT_KEY = "storm-only-jwt-key-0123456789abcdef0123"  # loopback throwaway servers only
CARDS = ["tok_visa"] * 4 + ["tok_chargeDeclined"]
STALE_ATTEMPT = 10  # seconds (the service's default is 60): the storm waits this out
SLOW = (0.08, 0.02)  # a slowed service: seconds stopped, then running, over and over


@dataclass
class Stack:
    """The servers and services, and the faults done to them."""

    workdir: Path
    window: int  # ORDER_EXPIRATION_SECONDS
    nats: NatsServer = field(init=False)
    mongo: MongoServer = field(init=False)
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self) -> Stack:
        self.nats = NatsServer(self.workdir / "nats").start()  # type: ignore[assignment]
        self.mongo = MongoServer(self.workdir / "mongo", storage=self.workdir / "data").start()  # type: ignore[assignment]
        env = {
            "MONGO_URI": self.mongo.uri,
            "NATS_URL": self.nats.url,
            "JWT_KEY": JWT_KEY,
            "COOKIE_SECURE": "false",
            "ORDER_EXPIRATION_SECONDS": str(self.window),
            "SETTLE_INTERVAL": "0.5",
            "STALE_ATTEMPT_SECONDS": str(STALE_ATTEMPT),
            "TEST_PROVIDER_DIR": str(self.provider_home),
            "LOG_FORMAT": "text",
        }
        for name in SERVICES:
            self.services[name] = ServiceProcess(name, f"{name}.main", env, self.workdir / name)
            self.services[name].start()
        return self

    @property
    def provider_home(self) -> Path:
        """The test provider's ledger and its `fault` switch (`payments.providers`)."""
        return self.workdir / "provider"

    @property
    def settled_after(self) -> float:
        """Seconds after the last action until every order and payment attempt can have
        reached its end: an order its expiry, an attempt its release."""
        return max(self.window, STALE_ATTEMPT) + 2

    def process(self, target: str) -> ServerProcess:
        return {"nats": self.nats, "mongo": self.mongo, **self.services}[target]

    def url(self, service: str) -> str:
        return self.services[service].url

    async def inflict(self, fault: Fault) -> None:
        if fault.kind == "provider":
            switch = self.provider_home / "fault"
            switch.write_text(fault.target)
            try:
                await asyncio.sleep(fault.hold)
            finally:
                switch.unlink(missing_ok=True)
            return
        process = self.process(fault.target)
        if fault.kind == "kill":
            process.kill()
            await asyncio.sleep(fault.hold)
            await asyncio.to_thread(process.restart)
        elif fault.kind == "pause":
            _signal_group(process, signal.SIGSTOP)
            try:
                await asyncio.sleep(fault.hold)
            finally:
                _signal_group(process, signal.SIGCONT)
        elif fault.kind == "slow":
            until = time.monotonic() + fault.hold
            while time.monotonic() < until:
                _signal_group(process, signal.SIGSTOP)
                try:
                    await asyncio.sleep(SLOW[0])
                finally:
                    _signal_group(process, signal.SIGCONT)
                await asyncio.sleep(SLOW[1])
        else:  # restart
            process.stop()
            await asyncio.sleep(fault.hold)
            await asyncio.to_thread(process.restart)

    def heal(self) -> None:
        """Everything running and awake again (a storm cut short leaves nothing paused)."""
        (self.provider_home / "fault").unlink(missing_ok=True)
        for process in (self.nats, self.mongo, *self.services.values()):
            if process.running:
                _signal_group(process, signal.SIGCONT)
            else:
                process.restart()

    def stop(self) -> None:
        for process in (*reversed(self.services.values()), self.mongo, self.nats):
            _signal_group(process, signal.SIGCONT)
            process.stop()


def _signal_group(process: ServerProcess, sig: signal.Signals) -> None:
    if process.process is not None and process.running:
        os.killpg(process.process.pid, sig)


@dataclass
class Tally:
    """What the users did and what they were answered."""

    actions: Counter[str] = field(default_factory=Counter)
    answers: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # a 500, never expected

    def answered(self, action: str, response: httpx.Response) -> httpx.Response:
        self.answers[response.status_code] += 1
        if response.status_code == 500:
            self.server_errors.append(f"{action}: {response.request.method} {response.request.url}")
        return response


class User:
    """One person's session on each service (cookies from signing up with auth)."""

    def __init__(self, stack: Stack, tally: Tally, n: int) -> None:
        self.stack, self.tally = stack, tally
        self.email = f"user{n}-{random.getrandbits(32):x}@storm.io"
        # one client for every service: its cookie jar carries auth's session to all
        self.client = httpx.AsyncClient(timeout=10)
        self.tickets: list[str] = []  # listed by this user
        self.orders: list[str] = []  # placed by this user

    async def call(self, action: str, service: str, method: str, path: str, body: Any = None):
        url = f"{self.stack.url(service)}{path}"
        try:
            response = await self.client.request(method, url, json=body)
        except httpx.HTTPError:
            self.tally.answers[0] += 1  # no answer: the service is down or paused
            return None
        return self.tally.answered(action, response)

    async def sign_up(self) -> None:
        body = {"email": self.email, "password": "storm-password"}
        for _ in range(20):  # auth may be down a while
            response = await self.call("signup", "auth", "POST", "/api/users/signup", body)
            if response is not None and response.status_code in (201, 400):
                return
            await asyncio.sleep(0.5)


async def act(user: User, others: list[User], rng: random.Random) -> None:
    """One thing a user does, drawn from the seed's generator."""
    action = rng.choice(
        ["sell", "sell", "edit", "browse", "order", "order", "pay", "cancel", "wait",
         "pay_and_cancel", "edit_and_order", "two_buyers"]  # fmt: skip
    )
    user.tally.actions[action] += 1
    if action == "sell":
        body = {"title": f"Storm {rng.randrange(10**6)}", "price": rng.randrange(5, 100)}
        response = await user.call(action, "tickets", "POST", "/api/tickets", body)
        if response is not None and response.status_code == 201:
            user.tickets.append(response.json()["id"])
    elif action == "edit" and user.tickets:
        await edit(user, rng.choice(user.tickets), rng, action)
    elif action == "browse":
        await user.call(action, "tickets", "GET", f"/api/tickets?max={rng.randrange(20, 100)}")
    elif action == "order":
        await order(user, others, rng, action)
    elif action == "pay" and user.orders:
        await pay(user, rng.choice(user.orders), rng, action)
    elif action == "cancel" and user.orders:
        await user.call(action, "orders", "DELETE", f"/api/orders/{rng.choice(user.orders)}")
    elif action == "pay_and_cancel" and user.orders:
        order_id = user.orders[-1]
        await asyncio.gather(
            pay(user, order_id, rng, action),
            user.call(action, "orders", "DELETE", f"/api/orders/{order_id}"),
        )
    elif action == "edit_and_order":
        seller = rng.choice(others)
        if seller.tickets:
            ticket_id = rng.choice(seller.tickets)
            await asyncio.gather(
                edit(seller, ticket_id, rng, action), place(user, ticket_id, action)
            )
    elif action == "two_buyers":
        other = rng.choice(others)
        ticket_id = await listed(user, rng)
        if ticket_id:
            await asyncio.gather(place(user, ticket_id, action), place(other, ticket_id, action))
    # "wait": nothing; an order left unpaid expires


async def edit(user: User, ticket_id: str, rng: random.Random, action: str) -> None:
    body = {"title": "Storm (edited)", "price": rng.randrange(5, 100)}
    await user.call(action, "tickets", "PUT", f"/api/tickets/{ticket_id}", body)


async def listed(user: User, rng: random.Random) -> str | None:
    response = await user.call("browse", "tickets", "GET", "/api/tickets")
    if response is None or response.status_code != 200 or not response.json():
        return None
    return rng.choice(response.json())["id"]


async def order(user: User, others: list[User], rng: random.Random, action: str) -> None:
    ticket_id = await listed(user, rng)
    if ticket_id:
        await place(user, ticket_id, action)


async def place(user: User, ticket_id: str, action: str) -> None:
    response = await user.call(action, "orders", "POST", "/api/orders", {"ticketId": ticket_id})
    if response is not None and response.status_code == 201:
        user.orders.append(response.json()["id"])


async def pay(user: User, order_id: str, rng: random.Random, action: str) -> None:
    body = {"orderId": order_id, "token": rng.choice(CARDS)}
    await user.call(action, "payments", "POST", "/api/payments", body)


@dataclass
class Outcome:
    seed: int
    faults: list[Fault]
    tally: Tally
    violations: list[invariants.Violation]

    def text(self) -> str:
        actions = ", ".join(f"{k} {v}" for k, v in sorted(self.tally.actions.items()))
        answers = ", ".join(f"{k or 'none'} x {v}" for k, v in sorted(self.tally.answers.items()))
        lines = [
            f"storm seed {self.seed}: {sum(self.tally.actions.values())} actions ({actions})",
            f"  answers: {answers}",
            f"  faults: {len(self.faults)}",
            *(f"    {fault}" for fault in self.faults),
            f"  invariants: {len(self.violations)} violation(s)",
            *(f"    {v}" for v in self.violations),
        ]
        return "\n".join(lines)


async def storm(
    seed: int,
    seconds: float,
    users: int,
    workdir: Path,
    *,
    window: int = 20,
    faults: list[Fault] | None = None,
) -> Outcome:
    """`faults`: this schedule instead of the seed's (a replay, a shrink's trial)."""
    faults = schedule(seed, seconds) if faults is None else faults
    stack = Stack(workdir, window).start()
    tally = Tally()
    try:
        people = [User(stack, tally, n) for n in range(users)]
        await asyncio.gather(*(p.sign_up() for p in people))
        rng = random.Random(seed)
        deadline = time.monotonic() + seconds

        async def shopper(person: User, own: random.Random) -> None:
            others = [p for p in people if p is not person]
            while time.monotonic() < deadline:
                await act(person, others, own)
                await asyncio.sleep(own.uniform(0.05, 0.4))

        async def faulting() -> None:
            started = time.monotonic()
            for fault in faults:
                await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
                await stack.inflict(fault)

        shoppers = [shopper(p, random.Random(rng.random())) for p in people]
        await asyncio.gather(faulting(), *shoppers)
        await asyncio.gather(*(p.client.aclose() for p in people))
        stack.heal()
        violations = await quiesced_violations(stack)
        violations += [invariants.Violation("no-server-error", e) for e in tally.server_errors]
    finally:
        stack.stop()
    return Outcome(seed, faults, tally, violations)


async def quiesced_violations(stack: Stack) -> list[invariants.Violation]:
    """Quiesce, then check every invariant. Quiet means: every order placed in the
    storm has reached its expiry and every payment attempt its release (an order
    expiring after the check would start work the check then sees half done), every
    service is ready, and every listener has caught up, twice a second apart (at most
    two minutes for the last two)."""
    await asyncio.sleep(stack.settled_after)
    nc = await nats.connect(stack.nats.url)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(stack.mongo.uri, tz_aware=True)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 120
        unready: list[str] = []
        quiet = 0
        while time.monotonic() < deadline and quiet < 2:
            unready = [name for name in SERVICES if not await _ready(stack.url(name))]
            drained = not await invariants.consumer_violations(js)
            quiet = quiet + 1 if not unready and drained else 0
            await asyncio.sleep(1)
        dbs = invariants.Databases(mongo.tickets, mongo.orders, mongo.payments)
        found = await invariants.check(
            dbs, js, grace=timedelta(seconds=stack.window), provider_home=stack.provider_home
        )
        found += [invariants.Violation("ready", f"{name} /readyz not 200") for name in unready]
        return found
    finally:
        await nc.close()
        await mongo.close()


async def _ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            return (await client.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def shrink(
    seed: int, seconds: float, users: int, root: Path, faults: list[Fault]
) -> tuple[list[Fault], float]:
    """The fewest of `faults` that still fail the seed's storm, and the shortest storm
    that still fails with them (`chaos.shrink`); each trial printed as it ends, its
    workdir kept under `root` when it failed."""
    trials = 0

    async def fails(subset: list[Fault], length: float = seconds) -> bool:
        nonlocal trials
        trials += 1
        workdir = root / f"trial-{trials}"
        workdir.mkdir(parents=True)
        outcome = await storm(seed, length, users, workdir, faults=subset)
        verdict = f"fails ({outcome.violations[0]})" if outcome.violations else "passes"
        print(f"  trial {trials}: {len(subset)} fault(s), {length:.0f} s: {verdict}", flush=True)
        if not outcome.violations:
            shutil.rmtree(workdir, ignore_errors=True)
        return bool(outcome.violations)

    smallest = await smallest_failing(faults, fails)
    length = shorter_storm(smallest, seconds)
    if length < seconds and await fails(smallest, length):
        seconds = length
    return smallest, seconds


def replay_command(seed: int, seconds: float, users: int, faults: list[Fault]) -> str:
    return (
        f"./pants run src/python/chaos:storm -- --seed {seed} --minutes {seconds / 60:.3f} "
        f"--users {users} --faults '{write_faults(faults)}'"
    )


def _faults(text: str) -> list[Fault]:
    try:
        return parse_faults(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main() -> None:
    parser = argparse.ArgumentParser(description="A seeded storm of users and faults.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument(
        "--faults",
        type=_faults,
        help="replay this schedule (at:kind:target:hold, comma-separated) instead of the seed's",
    )
    parser.add_argument(
        "--shrink", action="store_true", help="if the storm fails, narrow its schedule"
    )
    args = parser.parse_args()
    seconds = args.minutes * 60
    workdir = Path(tempfile.mkdtemp(prefix=f"storm-{args.seed}-"))
    outcome = asyncio.run(storm(args.seed, seconds, args.users, workdir, faults=args.faults))
    print(outcome.text(), flush=True)
    if not outcome.violations:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    print(f"  the servers' and services' logs: {workdir}", flush=True)
    print(f"  replay: {replay_command(args.seed, seconds, args.users, outcome.faults)}")
    if args.shrink:
        print("shrinking the schedule:", flush=True)
        faults, seconds = asyncio.run(
            shrink(args.seed, seconds, args.users, workdir / "shrink", outcome.faults)
        )
        print(f"  {len(faults)} fault(s) still fail it: {', '.join(map(str, faults)) or 'none'}")
        print(f"  replay: {replay_command(args.seed, seconds, args.users, faults)}")
    sys.exit(1)


if __name__ == "__main__":
    main()
