"""What the tickets service listens to: orders reserving, releasing and buying its
tickets.

order.created and order.cancelled are separate durable consumers, so one order's
cancellation can be handled before its creation (e.g. while the creation is being
retried). A cancellation is therefore remembered, and the reservation checks it after
reserving: whichever handler runs last sees the other's write, and the ticket ends up
free.

An order placed at a price the ticket no longer has (the seller's edit was acknowledged
before the order reached this service) is not given the ticket, and this service says
so (`ticket.refused`): orders cancels the order at once, and never completes an order
tickets did not reserve.
"""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from common.context import DataListener, StreamListener
from common.events import (
    EventAhead,
    OrderCancelledEvent,
    OrderCompletedEvent,
    OrderCreatedEvent,
)
from common.money import price_to_cents
from tickets import repository

log = logging.getLogger(__name__)


class TicketUnknown(Exception):
    """An order names a ticket this service does not have (retried, then poison)."""


async def _ticket(context: Any, ticket_id: str) -> dict[str, Any]:
    ticket = await repository.get(context.db, ticket_id)
    if ticket is None:
        raise TicketUnknown(f"ticket {ticket_id} not found")
    return ticket


class OrderCreatedListener(DataListener[OrderCreatedEvent]):
    """Reserve the ticket: set its `orderId`, version + 1, publish ticket.updated."""

    event = OrderCreatedEvent

    async def on_message(self, data: OrderCreatedEvent, msg: Msg) -> None:
        db, outbox = self.context.db, self.context.outbox
        ticket = await _ticket(self.context, data.ticket.id)
        if ticket.get("orderId") == data.id:
            pass  # already reserved by this order (a redelivery)
        elif await repository.was_cancelled(db, data.id):
            return  # the order is already over, whoever holds the ticket now
        elif ticket.get("orderId") is not None:
            # held by an earlier order whose cancellation has not been handled yet
            raise EventAhead(f"ticket {data.ticket.id} is still held by {ticket['orderId']}")
        elif ticket["priceCents"] != price_to_cents(data.ticket.price):
            log.info(
                "order %s not given ticket %s: placed at an earlier price", data.id, ticket["_id"]
            )
            await repository.refuse(outbox, data.ticket.id, data.id, repository.PRICE_CHANGED)
            return
        else:
            held = {"orderId": data.id, "reservedUntil": data.expiresAt}
            ticket = await repository.update(outbox, ticket, held)
            log.info("ticket %s reserved for order %s", data.ticket.id, data.id)
        if await repository.was_cancelled(db, data.id):  # cancelled while we reserved
            await repository.update(outbox, ticket, repository.RELEASED)


class OrderCancelledListener(DataListener[OrderCancelledEvent]):
    """Release the ticket: clear its `orderId`, version + 1, publish ticket.updated."""

    event = OrderCancelledEvent

    async def on_message(self, data: OrderCancelledEvent, msg: Msg) -> None:
        db, outbox = self.context.db, self.context.outbox
        await repository.record_cancellation(db, data.id)
        ticket = await _ticket(self.context, data.ticket.id)
        if ticket.get("orderId") == data.id:
            await repository.update(outbox, ticket, repository.RELEASED)
        # else: not reserved by this order (already released, or its creation comes
        # later and will see the cancellation)


class OrderCompletedListener(DataListener[OrderCompletedEvent]):
    """The order that holds the ticket was paid: the ticket is sold for good."""

    event = OrderCompletedEvent

    async def on_message(self, data: OrderCompletedEvent, msg: Msg) -> None:
        ticket = await _ticket(self.context, data.ticket.id)
        if ticket.get("sold"):
            return  # a redelivery
        if ticket.get("orderId") != data.id:  # orders completes only what we reserved
            raise EventAhead(f"ticket {data.ticket.id} is not reserved for {data.id} yet")
        await repository.update(self.context.outbox, ticket, {"sold": True})
        log.info("ticket %s sold (order %s)", data.ticket.id, data.id)


LISTENERS: list[type[StreamListener[Any]]] = [
    OrderCreatedListener,
    OrderCancelledListener,
    OrderCompletedListener,
]
