"""What must hold once a marketplace has quiesced, whatever happened before — checked
against the services' own databases and the stream, each violation named with its
counterexample (the ids, and what disagrees).

The stream audit (`common.audit`) checks the record every service agrees on; these
check that the services' states agree with it and with each other:

- `order-settles`: every order is `complete` or `cancelled`, or `created` inside its
  window;
- `open-order-holds-its-ticket`: an order `created` more than `grace` ago holds its
  ticket in tickets (the ticket's `orderId` is the order's): no countdown runs for a
  ticket nobody holds for the buyer;
- `replica-agrees`: orders' copy of every ticket has tickets' price, version and holder;
- `ticket-status-agrees`: a sold ticket's order is `complete`, a `complete` order's
  ticket is sold to it, a reserved ticket's order is `created`;
- `money-matches`: each `complete` order has one captured payment of its price, and
  nothing else is captured;
- `nothing-held-for-a-final-order`: no authorization is still held for an order that
  ended;
- `provider-agrees` (given the test provider's ledger, as the storm keeps it): every
  charge the provider holds, captured, voided or refunded is a payment's, in the state
  the payment says; the provider's captured total is the complete orders' total;
- `consumers-drained`: every durable consumer has handled everything (nothing pending,
  nothing waiting for an ack);
- `stream-audit`: what `common.audit` reports.

A dev and test tool (it reads every service's database): no service imports it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from nats.js.client import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from common.audit import audit
from common.events import STREAM_NAME, OrderStatus
from payments.providers import TestProvider, read_ledger
from payments.repository import AUTHORIZED, AUTHORIZING, CAPTURED, idempotency_key

Doc = dict[str, Any]
DEFAULT_GRACE = timedelta(seconds=10)


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


@dataclass(frozen=True)
class Databases:
    """Each service's own database (on `./run`, one server holds all four)."""

    tickets: AsyncDatabase[Doc]
    orders: AsyncDatabase[Doc]
    payments: AsyncDatabase[Doc]


@dataclass(frozen=True)
class State:
    """What the services hold, read once: tickets by id, orders' replica by id, orders,
    payments; and the test provider's charges (id → its state, its cents), when its
    ledger is known."""

    tickets: dict[str, Doc]
    replica: dict[str, Doc]
    orders: list[Doc]
    payments: list[Doc]
    charges: dict[str, tuple[str, int | None]] | None = None

    @cached_property
    def orders_by_id(self) -> dict[str, Doc]:
        return {str(o["_id"]): o for o in self.orders}

    @classmethod
    async def read(cls, dbs: Databases, provider_home: Path | None = None) -> State:
        tickets = await dbs.tickets.tickets.find().to_list()
        replica = await dbs.orders.tickets.find().to_list()
        charges = None
        if provider_home is not None:
            states, amounts = read_ledger(provider_home)
            charges = {charge: (state, amounts.get(charge)) for charge, state in states.items()}
        return cls(
            {str(t["_id"]): t for t in tickets},
            {str(t["_id"]): t for t in replica},
            await dbs.orders.orders.find().to_list(),
            await dbs.payments.payments.find().to_list(),
            charges,
        )


async def check(
    dbs: Databases,
    js: JetStreamContext,
    *,
    now: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
    provider_home: Path | None = None,
) -> list[Violation]:
    """Every invariant, on a quiesced system: `grace` is how long an order may wait for
    tickets to hold its ticket, and how long the stream audit allows a move to take;
    `provider_home` is the test provider's directory (its ledger), if it keeps one."""
    now = now or datetime.now(UTC)
    state = await State.read(dbs, provider_home)
    found = state_violations(state, now=now, grace=grace)
    found += await consumer_violations(js)
    report = await audit(js, margin=grace, now=now)
    found += [Violation("stream-audit", str(v)) for v in report.violations]
    return found


def state_violations(state: State, *, now: datetime, grace: timedelta) -> list[Violation]:
    return [
        *_orders_settle(state, now, grace),
        *_replica_agrees(state),
        *_ticket_status_agrees(state),
        *_money_matches(state),
        *_provider_agrees(state),
    ]


def _orders_settle(state: State, now: datetime, grace: timedelta) -> list[Violation]:
    found = []
    for order in state.orders:
        if order["status"] in (OrderStatus.COMPLETE, OrderStatus.CANCELLED):
            continue
        order_id, ticket_id = str(order["_id"]), order["ticket"]["id"]
        if order["expiresAt"] + grace <= now:
            found.append(
                Violation(
                    "order-settles", f"order {order_id} still {order['status']} past its expiry"
                )
            )
        elif order["createdAt"] + grace <= now:
            holder = state.tickets.get(ticket_id, {}).get("orderId")
            if holder != order_id:
                found.append(
                    Violation(
                        "open-order-holds-its-ticket",
                        f"order {order_id} open since {order['createdAt']:%H:%M:%S}; its ticket "
                        f"{ticket_id} is held by {holder or 'nobody'}",
                    )
                )
    return found


def _replica_agrees(state: State) -> list[Violation]:
    found = []
    for ticket_id, ticket in state.tickets.items():
        copy = state.replica.get(ticket_id)
        if copy is None:
            found.append(Violation("replica-agrees", f"ticket {ticket_id} missing in orders"))
            continue
        differs = [
            f"{field} {ticket.get(field)} ≠ {copy.get(field)}"
            for field in ("priceCents", "version", "orderId")
            if ticket.get(field) != copy.get(field)
        ]
        if differs:
            found.append(
                Violation(
                    "replica-agrees", f"ticket {ticket_id}: tickets ≠ orders: {', '.join(differs)}"
                )
            )
    return found


def _ticket_status_agrees(state: State) -> list[Violation]:
    found = []
    orders = state.orders_by_id
    for ticket_id, ticket in state.tickets.items():
        holder = ticket.get("orderId")
        if holder is None:
            continue
        status = orders.get(holder, {}).get("status", "unknown")
        expected = OrderStatus.COMPLETE if ticket.get("sold") else OrderStatus.CREATED
        if status != expected:
            kind = "sold" if ticket.get("sold") else "reserved"
            found.append(
                Violation(
                    "ticket-status-agrees",
                    f"ticket {ticket_id} {kind} for order {holder}, {status}",
                )
            )
    for order_id, order in orders.items():
        if order["status"] != OrderStatus.COMPLETE:
            continue
        ticket = state.tickets.get(order["ticket"]["id"], {})
        if not (ticket.get("sold") and ticket.get("orderId") == order_id):
            found.append(
                Violation(
                    "ticket-status-agrees",
                    f"order {order_id} complete; its ticket {order['ticket']['id']} is not sold to it",
                )
            )
    return found


def _money_matches(state: State) -> list[Violation]:
    found = []
    orders = state.orders_by_id
    captured = Counter[str]()
    for payment in state.payments:
        order = orders.get(payment["orderId"], {})
        status = order.get("status", "unknown")
        if payment["status"] == CAPTURED:
            captured[payment["orderId"]] += 1
            if status != OrderStatus.COMPLETE:
                found.append(
                    Violation(
                        "money-matches",
                        f"payment {payment['_id']} captured for order {payment['orderId']}, {status}",
                    )
                )
            elif payment["amountCents"] != order["ticket"]["priceCents"]:
                found.append(
                    Violation(
                        "money-matches",
                        f"payment {payment['_id']} captured {payment['amountCents']} for order "
                        f"{payment['orderId']} at {order['ticket']['priceCents']}",
                    )
                )
        elif payment["status"] == AUTHORIZED and status in (
            OrderStatus.COMPLETE,
            OrderStatus.CANCELLED,
        ):
            found.append(
                Violation(
                    "nothing-held-for-a-final-order",
                    f"payment {payment['_id']} still held for order {payment['orderId']}, {status}",
                )
            )
    for order_id, order in orders.items():
        if order["status"] == OrderStatus.COMPLETE and captured[order_id] != 1:
            found.append(
                Violation(
                    "money-matches",
                    f"order {order_id} complete with {captured[order_id]} captured payments",
                )
            )
    return found


def _provider_agrees(state: State) -> list[Violation]:
    """The provider's view of the money against ours (a lost answer or a crash between
    the provider's move and our save is where they part)."""
    if state.charges is None:
        return []
    found = []
    payments = {
        TestProvider.charge_id(idempotency_key(payment)): payment for payment in state.payments
    }
    orders = state.orders_by_id
    for charge, (held, cents) in sorted(state.charges.items()):
        payment = payments.get(charge)
        if payment is None:
            found.append(
                Violation("provider-agrees", f"charge {charge} {held} ({cents}¢) is no payment's")
            )
            continue
        status = orders.get(payment["orderId"], {}).get("status", "unknown")
        if payment["status"] == AUTHORIZING and held == "authorized":
            if status in (OrderStatus.COMPLETE, OrderStatus.CANCELLED):
                found.append(
                    Violation(
                        "nothing-held-for-a-final-order",
                        f"charge {charge} held at the provider for order "
                        f"{payment['orderId']}, {status}; payment {payment['_id']} still "
                        "authorizing",
                    )
                )
        elif held != payment["status"]:
            found.append(
                Violation(
                    "provider-agrees",
                    f"charge {charge} {held} at the provider; payment {payment['_id']} "
                    f"{payment['status']} (order {payment['orderId']}, {status})",
                )
            )
    captured = sum(cents or 0 for held, cents in state.charges.values() if held == CAPTURED)
    sold = sum(
        order["ticket"]["priceCents"]
        for order in state.orders
        if order["status"] == OrderStatus.COMPLETE
    )
    if captured != sold:
        found.append(
            Violation(
                "provider-agrees",
                f"the provider captured {captured}¢; the complete orders cost {sold}¢",
            )
        )
    return found


async def consumer_violations(js: JetStreamContext) -> list[Violation]:
    """The services' durable consumers with work left (an ephemeral one, such as the
    auditor's while it reads, is nobody's listener)."""
    found = []
    for info in await js.consumers_info(STREAM_NAME):
        if info.config.durable_name is None:
            continue
        if info.num_pending or info.num_ack_pending:
            found.append(
                Violation(
                    "consumers-drained",
                    f"{info.name}: {info.num_pending} pending, {info.num_ack_pending} unacked",
                )
            )
    return found
