"""What the payments service listens to: the orders it may be asked to pay (a replica,
in version order), and what orders decided about them — which the settler acts on
(capture, void, refund: `payments.settlement`)."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from common.context import DataListener, StreamListener
from common.events import OrderCancelledEvent, OrderCompletedEvent, OrderCreatedEvent
from payments import repository
from payments.parts import parts_of

log = logging.getLogger(__name__)


class OrderCreatedListener(DataListener[OrderCreatedEvent]):
    event = OrderCreatedEvent

    async def on_message(self, data: OrderCreatedEvent, msg: Msg) -> None:
        await repository.apply_order(self.context.db, data)


class _SettlingListener(DataListener[Any]):
    """Apply orders' decision to the replica, then settle the order's payment now (a
    failure naks the message; the settler's loop also tries again)."""

    async def on_message(self, data: Any, msg: Msg) -> None:
        await repository.apply_order(self.context.db, data)
        outcome = await parts_of(self.context).settler.settle_order(data.id)
        why = f" ({data.reason})" if getattr(data, "reason", None) else ""  # order.cancelled/2
        log.info("order %s %s%s: %s", data.id, self.subject.value.split(".")[1], why, outcome)


class OrderCompletedListener(_SettlingListener):
    event = OrderCompletedEvent


class OrderCancelledListener(_SettlingListener):
    event = OrderCancelledEvent


LISTENERS: list[type[StreamListener[Any]]] = [
    OrderCreatedListener,
    OrderCompletedListener,
    OrderCancelledListener,
]
