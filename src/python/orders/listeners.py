"""What the orders service listens to: the tickets it can sell (a replica, in version
order)."""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg

from common.events import Listener, TicketCreatedEvent, TicketUpdatedEvent
from orders import repository


class TicketCreatedListener(Listener[TicketCreatedEvent]):
    event = TicketCreatedEvent

    async def on_message(self, data: TicketCreatedEvent, msg: Msg) -> None:
        await repository.apply_ticket(self.context.db, data)


class TicketUpdatedListener(Listener[TicketUpdatedEvent]):
    event = TicketUpdatedEvent

    async def on_message(self, data: TicketUpdatedEvent, msg: Msg) -> None:
        await repository.apply_ticket(self.context.db, data)


LISTENERS: list[type[Listener[Any]]] = [TicketCreatedListener, TicketUpdatedListener]
