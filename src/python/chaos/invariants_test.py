"""The invariant checker on the REAL MongoDB-wire server and nats-server: a state that
holds every invariant passes, and each kind of broken state is named with its ids."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from chaos.invariants import Databases, State, check, consumer_violations, state_violations
from common.events import STREAM_NAME, OrderCreatedEvent, publish
from payments.providers import TestProvider
from payments.repository import idempotency_key

NOW = datetime.now(UTC)
GRACE = timedelta(seconds=10)
LONG_AGO = NOW - timedelta(minutes=1)


def ticket(ticket_id: str, order_id: str | None = None, **fields) -> dict:
    return {"_id": ticket_id, "priceCents": 1000, "version": 1, "orderId": order_id, **fields}


def order(order_id: str, ticket_id: str, status: str, **fields) -> dict:
    return {
        "_id": order_id,
        "status": status,
        "ticket": {"id": ticket_id, "priceCents": 1000},
        "createdAt": LONG_AGO,
        "expiresAt": NOW + timedelta(minutes=14),
        **fields,
    }


def payment(order_id: str, status: str, cents: int = 1000) -> dict:
    return {
        "_id": f"p-{order_id}-{status}",
        "orderId": order_id,
        "status": status,
        "amountCents": cents,
    }


SOLD = State(
    tickets={"t1": ticket("t1", "o1", sold=True), "t2": ticket("t2", "o2"), "t3": ticket("t3")},
    replica={"t1": ticket("t1", "o1"), "t2": ticket("t2", "o2"), "t3": ticket("t3")},
    orders=[
        order("o1", "t1", "complete"),
        order("o2", "t2", "created"),
        order("o3", "t3", "cancelled"),
        order("o4", "t3", "created", createdAt=NOW),  # tickets has a few seconds to hold it
    ],
    payments=[payment("o1", "captured"), payment("o3", "voided")],
)


def names(found) -> list[str]:
    return sorted(v.invariant for v in found)


def test_a_settled_market_holds_every_invariant():
    assert state_violations(SOLD, now=NOW, grace=GRACE) == []


def broken(**changes) -> State:
    """The settled market with some of its documents changed (by id)."""
    tickets = {**SOLD.tickets, **changes.get("tickets", {})}
    replica = {**SOLD.replica, **changes.get("replica", {})}
    for gone in changes.get("missing", []):
        del replica[gone]
    orders = {o["_id"]: o for o in [*SOLD.orders, *changes.get("orders", [])]}
    payments = {p["orderId"]: p for p in [*SOLD.payments, *changes.get("payments", [])]}
    return State(tickets, replica, list(orders.values()), list(payments.values()))


@pytest.mark.parametrize(
    "state, invariant, ids",
    [
        # the defect the storm was asked for: an open order whose ticket nobody holds
        (broken(tickets={"t2": ticket("t2")}), "open-order-holds-its-ticket", ["o2", "t2"]),
        (
            broken(orders=[order("o2", "t2", "created", expiresAt=LONG_AGO)]),
            "order-settles",
            ["o2"],
        ),
        (broken(replica={"t3": ticket("t3", priceCents=500)}), "replica-agrees", ["t3", "500"]),
        (broken(missing=["t1"]), "replica-agrees", ["t1"]),
        (broken(orders=[order("o1", "t1", "cancelled")]), "ticket-status-agrees", ["t1", "o1"]),
        (broken(payments=[payment("o3", "captured")]), "money-matches", ["o3"]),
        (broken(payments=[payment("o1", "captured", cents=900)]), "money-matches", ["o1", "900"]),
        (broken(payments=[payment("o3", "authorized")]), "nothing-held-for-a-final-order", ["o3"]),
    ],
)
def test_each_broken_state_is_named_with_its_ids(state, invariant, ids):
    found = state_violations(state, now=NOW, grace=GRACE)
    assert invariant in names(found), found
    detail = " ".join(v.detail for v in found if v.invariant == invariant)
    assert all(i in detail for i in ids), detail


async def test_the_databases_and_the_stream_are_read_as_they_are(mongo_client, nats_manager):
    """On the real servers: the state as stored, a consumer with work left, and the
    stream audit's own finding (an order that never ended)."""
    prefix = uuid.uuid4().hex[:8]
    dbs = Databases(
        *(mongo_client[f"{prefix}-{name}"] for name in ("tickets", "orders", "payments"))
    )
    await dbs.tickets.tickets.insert_many([ticket("t1", "o1", sold=True)])
    await dbs.orders.tickets.insert_many([ticket("t1", "o1")])
    await dbs.orders.orders.insert_many([order("o1", "t1", "complete")])
    await dbs.payments.payments.insert_many([payment("o1", "captured")])
    js = nats_manager.jetstream
    expired = OrderCreatedEvent(
        id=f"{prefix}-o9",
        version=0,
        status="created",
        userId="buyer",
        expiresAt=NOW - timedelta(hours=1),
        ticket={"id": "t9", "price": 10},
    )
    await publish(js, expired)
    durable = f"chaos-test-{prefix}"
    await js.add_consumer(
        STREAM_NAME,
        ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subject="order.created"
        ),
    )
    assert [v.detail for v in await consumer_violations(js) if durable in v.detail]
    found = await check(dbs, js, now=NOW, grace=GRACE)
    assert [v for v in found if v.invariant == "stream-audit" and expired.id in v.detail]
    assert "consumers-drained" in names(found)
    assert not [v for v in found if v.invariant not in ("stream-audit", "consumers-drained")]
    await js.delete_consumer(STREAM_NAME, durable)


def charge(order_id: str, status: str = "authorized") -> str:
    """The test provider's id for the charge of `payment(order_id, status)`."""
    return TestProvider.charge_id(idempotency_key(payment(order_id, status)))


LEDGER = {charge("o1", "captured"): ("captured", 1000), charge("o3", "voided"): ("voided", 1000)}


def with_ledger(state: State, **charges: tuple[str, int]) -> State:
    return replace(state, charges={**LEDGER, **charges})


@pytest.mark.parametrize(
    "state, ids",
    [
        # money moved for nothing: a charge no payment of ours knows
        (with_ledger(SOLD, pi_test_stranger=("captured", 700)), ["pi_test_stranger", "700"]),
        # our void saved, the provider's never made: the card still held
        (with_ledger(SOLD, **{charge("o3", "voided"): ("authorized", 1000)}), ["o3", "voided"]),
        # captured at the provider, its answer lost, and we voided by our own record
        (with_ledger(SOLD, **{charge("o3", "voided"): ("captured", 1000)}), ["1000¢"]),
    ],
)
def test_the_providers_ledger_must_agree_with_our_payments(state, ids):
    assert state_violations(with_ledger(SOLD), now=NOW, grace=GRACE) == []
    found = state_violations(state, now=NOW, grace=GRACE)
    assert names(found) and set(names(found)) == {"provider-agrees"}, found
    detail = " ".join(v.detail for v in found)
    assert all(i in detail for i in ids), detail


def test_a_hold_whose_answer_was_lost_must_be_released_once_its_order_is_over():
    lost = payment("o3", "authorizing")  # the provider held the card; we never heard
    state = broken(payments=[lost])
    state = replace(state, charges={**LEDGER, charge("o3", "authorizing"): ("authorized", 1000)})
    del state.charges[charge("o3", "voided")]
    found = state_violations(state, now=NOW, grace=GRACE)
    assert names(found) == ["nothing-held-for-a-final-order"], found
    assert "o3" in found[0].detail
