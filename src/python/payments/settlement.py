"""The settler: moves each payment on once orders has decided its order.

Orders is the one authority on an order: payments only authorizes, and captures,
voids or refunds according to what orders decided (its replica of the order):

| payment      | order      | move                                        | event            |
|--------------|------------|---------------------------------------------|------------------|
| authorized   | complete   | capture                                     | payment.created  |
| authorized   | cancelled  | void (release the hold)                     | payment.voided   |
| captured     | cancelled  | refund                                      | payment.refunded |
| authorizing, | cancelled  | authorize again with its key (the provider  | payment.voided   |
| stale        |            | answers with the same hold, if any), void   |                  |

Each move calls the provider with a key of its own (`capture-<payment id>`, ...), so
a repeat after a crash or a provider outage moves no money twice; the payment and its
event are then saved in one write (the outbox). A move that fails is tried again: by
the listener's redelivery, and every `interval` by the loop, which looks at every
authorized payment and every one marked due (its order changed) — so a crash between
authorize and capture, or a provider down for an hour, heals by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from common.events import (
    Event,
    OrderStatus,
    PaymentCreatedEvent,
    PaymentRefundedEvent,
    PaymentVoidedEvent,
)
from common.mongo import VersionConflict
from common.outbox import Outbox
from common.tasks import Loop
from payments import repository
from payments.providers import CardDeclined, InvalidToken, PaymentProvider
from payments.repository import (
    AUTHORIZED,
    AUTHORIZING,
    CAPTURED,
    DUE,
    PAYMENTS,
    REFUNDED,
    VOIDED,
)

log = logging.getLogger(__name__)

Doc = dict[str, Any]

STALE_ATTEMPT = timedelta(minutes=1)
"""An attempt still `authorizing` after this long was left by a crash or a lost answer
(a request gives up long before): the settler may finish it (`STALE_ATTEMPT_SECONDS`)."""


@dataclass(frozen=True)
class Move:
    """A move of the provider's on a payment, the payment's new status, its event."""

    name: str  # also the provider's idempotency key's prefix: `capture-<payment id>`
    of: Callable[[PaymentProvider], Callable[..., Awaitable[None]]]  # the provider's method
    status: str
    event: type[Event]

    def event_for(self, doc: Doc) -> Event:
        """The move's event for the payment: `{id, orderId}`, and `stripeId` for the
        models that carry it (the others ignore it)."""
        return self.event(id=str(doc["_id"]), orderId=doc["orderId"], stripeId=doc["stripeId"])


CAPTURE = Move("capture", lambda provider: provider.capture, CAPTURED, PaymentCreatedEvent)
VOID = Move("void", lambda provider: provider.void, VOIDED, PaymentVoidedEvent)
REFUND = Move("refund", lambda provider: provider.refund, REFUNDED, PaymentRefundedEvent)

MOVES: dict[tuple[str, str], Move] = {  # (payment, order) → the move
    (AUTHORIZED, OrderStatus.COMPLETE): CAPTURE,
    (AUTHORIZED, OrderStatus.CANCELLED): VOID,
    (CAPTURED, OrderStatus.CANCELLED): REFUND,
}


class Settler:
    """A payments worker (`common.context.Worker`) on the service's database and outbox."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        outbox: Outbox,
        provider: PaymentProvider,
        *,
        interval: float = 1.0,
        stale_after: timedelta = STALE_ATTEMPT,
    ) -> None:
        self.db, self.outbox, self.provider = db, outbox, provider
        self.interval = interval
        self.stale_after = stale_after
        self._wake = asyncio.Event()
        self._loop = Loop("payments-settler", self._step, pause=interval)
        self._locks: dict[str, asyncio.Lock] = {}  # one settlement at a time per order

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def wake(self) -> None:
        self._wake.set()

    async def settle_order(self, order_id: str) -> str:
        """Move the order's payment on, if its order calls for it. Raises
        ProviderUnavailable (or a database error) when the move could not be made:
        it stays to do. One order at a time in this process (the listener and the
        loop may both look at it), each reading the payment once its turn comes;
        another replica may make the same move at once: the provider's idempotency
        key and the version-checked save make it one."""
        lock = self._locks.setdefault(order_id, asyncio.Lock())
        try:
            async with lock:
                payment = await repository.get_payment(self.db, order_id)
                return await self._settle(payment) if payment else "no payment"
        finally:
            if not lock.locked():
                self._locks.pop(order_id, None)

    async def _settle(self, payment: Doc) -> str:
        order = await repository.get_order(self.db, payment["orderId"])
        order_status = order["status"] if order else None
        move = MOVES.get((payment["status"], order_status))
        if move is None:
            stale = payment["status"] == AUTHORIZING and self._stale(payment)
            if stale and order_status == OrderStatus.CANCELLED:
                return await self._release_stale_attempt(payment)
            if payment.get(DUE):  # looked at: nothing to do until its order changes again
                await self.db[PAYMENTS].update_one(
                    {"_id": payment["_id"], "version": payment["version"]}, {"$unset": {DUE: ""}}
                )
            return "nothing to do"
        move_it = move.of(self.provider)
        await move_it(payment["stripeId"], idempotency_key=_key(move.name, payment))
        changes = {"status": move.status, DUE: None}
        try:
            await self.outbox.update(PAYMENTS, payment, changes, move.event_for)
        except VersionConflict:
            return "settled by another"  # a replica got there first
        log.info("payment %s of order %s: %s", payment["_id"], payment["orderId"], move.name)
        return move.name

    def _stale(self, payment: Doc) -> bool:
        return payment["createdAt"] < datetime.now(UTC) - self.stale_after

    async def _release_stale_attempt(self, payment: Doc) -> str:
        """An attempt a crash left `authorizing`, for an order that is over: whether
        the card was authorized is unknown, so ask again with the same key (the
        provider answers with the same hold, or declines) and release it."""
        try:
            charge = await repository.authorize_attempt(self.db, self.provider, payment)
        except (CardDeclined, InvalidToken):
            return "dropped"
        await VOID.of(self.provider)(charge.id, idempotency_key=_key(VOID.name, payment))
        changes = {"status": VOID.status, "stripeId": charge.id, "token": None, DUE: None}
        try:
            await self.outbox.update(PAYMENTS, payment, changes, VOID.event_for)
        except VersionConflict:
            return "settled by another"
        return VOID.name

    async def _step(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._wake.wait()
        self._wake.clear()
        stale = datetime.now(UTC) - self.stale_after
        query = {
            "$or": [
                {"status": AUTHORIZED},
                {DUE: True},
                {"status": AUTHORIZING, "createdAt": {"$lt": stale}},
            ]
        }
        async for doc in self.db[PAYMENTS].find(query, {"orderId": 1}).limit(500):
            try:
                await self.settle_order(doc["orderId"])
            except Exception as exc:  # the provider or the database: next time
                log.warning("payment of order %s not settled yet: %r", doc["orderId"], exc)


def _key(move: str, payment: Doc) -> str:
    return f"{move}-{payment['_id']}"
