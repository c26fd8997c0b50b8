"""What the expiration service listens to: new orders (schedule their expiry) and orders
that ended early (drop the schedule)."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from common.context import StreamListener
from common.events import OrderCancelledEvent, OrderCompletedEvent, OrderCreatedEvent
from expiration.schedule import cancel_expiration, schedule_expiration

log = logging.getLogger(__name__)


class OrderCreatedListener(StreamListener[OrderCreatedEvent]):
    event = OrderCreatedEvent

    async def on_message(self, data: OrderCreatedEvent, msg: Msg) -> None:
        timeout = self.context.settings.publish_timeout
        how = await schedule_expiration(self.js, data.id, data.expiresAt, timeout=timeout)
        log.info("order %s expires at %s (%s)", data.id, data.expiresAt.isoformat(), how)


class OrderCancelledListener(StreamListener[OrderCancelledEvent]):
    event = OrderCancelledEvent

    async def on_message(self, data: OrderCancelledEvent, msg: Msg) -> None:
        await cancel_expiration(self.js, data.id)


class OrderCompletedListener(StreamListener[OrderCompletedEvent]):
    event = OrderCompletedEvent

    async def on_message(self, data: OrderCompletedEvent, msg: Msg) -> None:
        await cancel_expiration(self.js, data.id)


LISTENERS: list[type[StreamListener[Any]]] = [
    OrderCreatedListener,
    OrderCancelledListener,
    OrderCompletedListener,
]
