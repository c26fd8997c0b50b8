"""The money auditor: is any money where it should not be?

Reads the whole TICKETING stream from its first message, rebuilds every order's and
every payment's story from the events (nothing else: the stream is the record all
services agree on), and reports each violation of the buying invariants:

- I1 a card is captured only for an order that completes: a capture (`payment.created`)
  for an order that did not complete, not refunded, is a violation; so is an order
  cancelled while its authorization is neither voided nor refunded, once `margin`
  has passed (the settler voids within seconds);
- I2 a ticket is sold once: two completed orders for one ticket, or two captures for
  one ticket net of refunds;
- every order ends: one with no terminal event `margin` past its expiry; a completed
  order whose payment was not captured `margin` after it completed (the seller unpaid).

`./run audit` prints the report and exits 1 on any violation; tests call `audit(js)`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from common.events.contracts import STREAM_NAME, Subject
from common.events.versions import read_payload

DEFAULT_MARGIN = timedelta(seconds=60)


@dataclass
class PaymentStory:
    id: str
    order_id: str
    authorized_at: datetime | None = None
    captures: int = 0
    voided: bool = False
    refunded: bool = False
    disputes: list[str] = field(default_factory=list)  # the bank's reasons


@dataclass
class OrderStory:
    id: str
    ticket_id: str | None = None
    expires_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    payments: dict[str, PaymentStory] = field(default_factory=dict)

    def payment(self, payment_id: str) -> PaymentStory:
        return self.payments.setdefault(payment_id, PaymentStory(payment_id, self.id))


@dataclass(frozen=True)
class Violation:
    rule: str  # I1, I2, ends
    order_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} order {self.order_id}: {self.message}"


@dataclass
class Report:
    events: int
    orders: int
    payments: int
    violations: list[Violation]
    disputed: list[str] = field(default_factory=list)  # no violation of ours: to look at

    @property
    def clean(self) -> bool:
        return not self.violations

    def text(self) -> str:
        head = f"audit: {self.events} events, {self.orders} orders, {self.payments} payments: " + (
            "no violation" if self.clean else f"{len(self.violations)} violation(s)"
        )
        disputes = [f"  disputed (the bank's word, not a violation): {d}" for d in self.disputed]
        return "\n".join([head, *(f"  {v}" for v in self.violations), *disputes])


Event = tuple[str, dict[str, Any], datetime]  # subject, payload, when the stream stored it


def stories(events: Iterable[Event]) -> dict[str, OrderStory]:
    orders: dict[str, OrderStory] = {}

    def order(order_id: str) -> OrderStory:
        return orders.setdefault(order_id, OrderStory(order_id))

    for subject, data, at in events:
        if subject == Subject.ORDER_CREATED:
            story = order(data["id"])
            story.ticket_id = data["ticket"]["id"]
            story.expires_at = datetime.fromisoformat(data["expiresAt"].replace("Z", "+00:00"))
        elif subject == Subject.ORDER_COMPLETED:
            story = order(data["id"])
            story.completed_at = story.completed_at or at  # the first one counts
        elif subject == Subject.ORDER_CANCELLED:
            story = order(data["id"])
            story.cancelled_at = story.cancelled_at or at
        elif subject == Subject.PAYMENT_AUTHORIZED:
            order(data["orderId"]).payment(data["id"]).authorized_at = at
        elif subject == Subject.PAYMENT_CREATED:
            order(data["orderId"]).payment(data["id"]).captures += 1
        elif subject == Subject.PAYMENT_VOIDED:
            order(data["orderId"]).payment(data["id"]).voided = True
        elif subject == Subject.PAYMENT_REFUNDED:
            order(data["orderId"]).payment(data["id"]).refunded = True
        elif subject == Subject.PAYMENT_DISPUTED:
            order(data["orderId"]).payment(data["id"]).disputes.append(data.get("reason") or "")
    return orders


def violations(
    orders: dict[str, OrderStory], *, now: datetime, margin: timedelta = DEFAULT_MARGIN
) -> list[Violation]:
    found: list[Violation] = []
    sold: dict[str, list[str]] = defaultdict(list)  # ticket -> completed orders
    charged: dict[str, list[str]] = defaultdict(list)  # ticket -> orders captured, net
    for story in orders.values():
        if story.completed_at and story.cancelled_at:
            found.append(Violation("I1", story.id, "both completed and cancelled"))
        if story.completed_at and story.ticket_id:
            sold[story.ticket_id].append(story.id)
        for payment in story.payments.values():
            kept = payment.captures > 0 and not payment.refunded
            if payment.captures > 1:
                found.append(Violation("I1", story.id, f"payment {payment.id} captured twice"))
            if kept and not story.completed_at:
                found.append(
                    Violation("I1", story.id, f"payment {payment.id} captured, order not complete")
                )
            if kept and story.ticket_id:
                charged[story.ticket_id].append(story.id)
            released = payment.voided or payment.refunded or payment.captures
            if (
                story.cancelled_at
                and payment.authorized_at
                and not released
                and story.cancelled_at + margin < now
            ):
                found.append(
                    Violation("I1", story.id, f"cancelled; payment {payment.id} never voided")
                )
            if (
                story.completed_at
                and payment.authorized_at
                and not payment.captures
                and story.completed_at + margin < now
            ):
                found.append(
                    Violation("ends", story.id, f"complete; payment {payment.id} never captured")
                )
        over = story.expires_at and story.expires_at + margin < now
        if over and not (story.completed_at or story.cancelled_at):
            found.append(Violation("ends", story.id, "past its expiry and still open"))
    for ticket, order_ids in sold.items():
        if len(order_ids) > 1:
            found.append(Violation("I2", order_ids[-1], f"ticket {ticket} sold to {order_ids}"))
    for ticket, order_ids in charged.items():
        if len(order_ids) > 1:
            found.append(Violation("I2", order_ids[-1], f"ticket {ticket} charged to {order_ids}"))
    return found


async def read_stream(js: JetStreamContext, *, batch: int = 500) -> list[Event]:
    """Every order and payment event on the stream, oldest first, through a consumer of
    the auditor's own (ephemeral: gone when it is done)."""
    info = await js.stream_info(STREAM_NAME)
    if info.state.messages == 0:
        return []
    subscription = await js.pull_subscribe(
        ">",
        stream=STREAM_NAME,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0
        ),
    )
    events: list[Event] = []
    try:
        while True:
            try:
                messages = await subscription.fetch(batch, timeout=2)
            except NatsTimeoutError:
                break  # nothing more (the stream's last messages were purged meanwhile)
            for message in messages:
                if message.subject.startswith(("order.", "payment.")):
                    with contextlib.suppress(ValueError):  # as its subject's newest version
                        payload = read_payload(message.subject, message.data, message.headers)
                        events.append((message.subject, payload, message.metadata.timestamp))
            if messages[-1].metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            name = (await subscription.consumer_info()).name
            await subscription.unsubscribe()
            await js.delete_consumer(STREAM_NAME, name)  # not left for its 30 s of inactivity
    return events


async def audit(
    js: JetStreamContext, *, margin: timedelta = DEFAULT_MARGIN, now: datetime | None = None
) -> Report:
    events = await read_stream(js)
    orders = stories(events)
    found = violations(orders, now=now or datetime.now(UTC), margin=margin)
    payments = sum(len(story.payments) for story in orders.values())
    disputed = [
        f"payment {p.id} of order {story.id} ({', '.join(p.disputes) or 'no reason given'})"
        for story in orders.values()
        for p in story.payments.values()
        if p.disputes
    ]
    return Report(len(events), len(orders), payments, found, disputed)
