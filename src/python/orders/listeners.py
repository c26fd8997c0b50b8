"""What the orders service listens to: the tickets it can sell (a replica, in version
order) and orders whose time is up."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from common.events import (
    ExpirationCompleteEvent,
    Listener,
    PaymentCreatedEvent,
    TicketCreatedEvent,
    TicketUpdatedEvent,
)
from orders import repository

log = logging.getLogger(__name__)


class TicketCreatedListener(Listener[TicketCreatedEvent]):
    event = TicketCreatedEvent

    async def on_message(self, data: TicketCreatedEvent, msg: Msg) -> None:
        await repository.apply_ticket(self.context.db, data)


class TicketUpdatedListener(Listener[TicketUpdatedEvent]):
    event = TicketUpdatedEvent

    async def on_message(self, data: TicketUpdatedEvent, msg: Msg) -> None:
        await repository.apply_ticket(self.context.db, data)


class ExpirationCompleteListener(Listener[ExpirationCompleteEvent]):
    """Cancel an unpaid order whose time is up (tickets then releases the ticket);
    a paid or already cancelled one stays as it is. Idempotent."""

    event = ExpirationCompleteEvent

    async def on_message(self, data: ExpirationCompleteEvent, msg: Msg) -> None:
        outcome = await repository.expire(self.context.outbox, self.context.db, data.orderId)
        log.info("order %s expired: %s", data.orderId, outcome)


class PaymentCreatedListener(Listener[PaymentCreatedEvent]):
    """A paid order is complete: it can no longer be cancelled, and its expiration
    does nothing. Idempotent."""

    event = PaymentCreatedEvent

    async def on_message(self, data: PaymentCreatedEvent, msg: Msg) -> None:
        outcome = await repository.mark_paid(self.context.db, data.orderId)
        level = logging.ERROR if "refund" in outcome else logging.INFO
        log.log(level, "order %s paid (payment %s): %s", data.orderId, data.id, outcome)


LISTENERS: list[type[Listener[Any]]] = [
    TicketCreatedListener,
    TicketUpdatedListener,
    ExpirationCompleteListener,
    PaymentCreatedListener,
]
