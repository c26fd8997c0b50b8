"""What the orders service listens to: the tickets it can sell (a replica, in version
order), orders whose time is up, and what payments did — orders alone decides whether
an authorized payment completes its order."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from common.context import DataListener, StreamListener
from common.events import (
    ExpirationCompleteEvent,
    PaymentAuthorizedEvent,
    PaymentCreatedEvent,
    PaymentDisputedEvent,
    PaymentRefundedEvent,
    PaymentVoidedEvent,
    TicketCreatedEvent,
    TicketRefusedEvent,
    TicketUpdatedEvent,
)
from orders import repository

log = logging.getLogger(__name__)


class TicketCreatedListener(DataListener[TicketCreatedEvent]):
    event = TicketCreatedEvent

    async def on_message(self, data: TicketCreatedEvent, msg: Msg) -> None:
        await repository.apply_ticket(self.context.db, data)


class TicketUpdatedListener(DataListener[TicketUpdatedEvent]):
    """Keep the replica; an unpaid order placed at the price this edit replaced is
    cancelled (tickets refuses to reserve the ticket for it)."""

    event = TicketUpdatedEvent

    async def on_message(self, data: TicketUpdatedEvent, msg: Msg) -> None:
        await repository.apply_ticket(self.context.db, data)
        if data.orderId is not None:
            return  # a reservation or a sale: the price of a held ticket cannot change
        outbox, db = self.context.outbox, self.context.db
        if order_id := await repository.cancel_stale_price(outbox, db, data.id):
            log.info("order %s cancelled: ticket %s changed price", order_id, data.id)


class ExpirationCompleteListener(DataListener[ExpirationCompleteEvent]):
    """Cancel an unpaid order whose time is up (tickets then releases the ticket);
    a paid or already cancelled one stays as it is. Idempotent."""

    event = ExpirationCompleteEvent

    async def on_message(self, data: ExpirationCompleteEvent, msg: Msg) -> None:
        outbox, db = self.context.outbox, self.context.db
        outcome = await repository.cancel_unless_final(outbox, db, data.orderId, repository.EXPIRED)
        log.info("order %s expired: %s", data.orderId, outcome)


class TicketRefusedListener(DataListener[TicketRefusedEvent]):
    """Tickets did not reserve the ticket for an unpaid order (placed at a price the
    seller had already changed): cancel it at once, telling the buyer why, rather than
    leave it open for its whole window with a ticket nobody holds for it. Idempotent."""

    event = TicketRefusedEvent

    async def on_message(self, data: TicketRefusedEvent, msg: Msg) -> None:
        outbox, db = self.context.outbox, self.context.db
        outcome = await repository.cancel_unless_final(
            outbox, db, data.orderId, repository.SELLER_CHANGED
        )
        log.info("order %s refused by tickets (%s): %s", data.orderId, data.reason, outcome)


class PaymentAuthorizedListener(DataListener[PaymentAuthorizedEvent]):
    """The card holds the money: complete the order or cancel it (repository.decide_
    payment). Idempotent: a decided order stays decided."""

    event = PaymentAuthorizedEvent

    async def on_message(self, data: PaymentAuthorizedEvent, msg: Msg) -> None:
        outcome = await repository.decide_payment(self.context.outbox, self.context.db, data)
        log.info("order %s, payment %s authorized: %s", data.orderId, data.id, outcome)


class _PaymentStateListener(DataListener[Any]):
    state: str

    async def on_message(self, data: Any, msg: Msg) -> None:
        await repository.record_payment(self.context.db, data.orderId, self.state)


class PaymentCreatedListener(_PaymentStateListener):
    event = PaymentCreatedEvent
    state = "captured"


class PaymentVoidedListener(_PaymentStateListener):
    event = PaymentVoidedEvent
    state = "voided"


class PaymentRefundedListener(_PaymentStateListener):
    event = PaymentRefundedEvent
    state = "refunded"


class PaymentDisputedListener(_PaymentStateListener):
    event = PaymentDisputedEvent
    state = "disputed"


LISTENERS: list[type[StreamListener[Any]]] = [
    TicketCreatedListener,
    TicketUpdatedListener,
    ExpirationCompleteListener,
    TicketRefusedListener,
    PaymentAuthorizedListener,
    PaymentCreatedListener,
    PaymentVoidedListener,
    PaymentRefundedListener,
    PaymentDisputedListener,
]
