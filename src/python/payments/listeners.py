"""What the payments service listens to: the orders it may be asked to charge (a
replica, in version order)."""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg

from common.events import Listener, OrderCancelledEvent, OrderCreatedEvent
from payments import repository


class OrderCreatedListener(Listener[OrderCreatedEvent]):
    event = OrderCreatedEvent

    async def on_message(self, data: OrderCreatedEvent, msg: Msg) -> None:
        await repository.apply_order(self.context.db, data)


class OrderCancelledListener(Listener[OrderCancelledEvent]):
    event = OrderCancelledEvent

    async def on_message(self, data: OrderCancelledEvent, msg: Msg) -> None:
        await repository.apply_order(self.context.db, data)


LISTENERS: list[type[Listener[Any]]] = [OrderCreatedListener, OrderCancelledListener]
