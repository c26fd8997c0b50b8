"""Our ledger against the provider's: where each payment's money is as we record it, and
as Stripe holds it (its PaymentIntents and refunds), compared.

A payment we record `authorized` is a hold at Stripe (`requires_capture`), `captured` is
money taken (`succeeded`, not refunded), `voided` a hold released (`canceled`),
`refunded` money given back (`succeeded` with a refund). Each payment has one intent
(its id is our `stripeId`). A difference is one of:

- `state`: the two disagree on where the money is;
- `amount`: they disagree on how much;
- `missing`: an intent we recorded that Stripe does not have;
- `unknown`: an intent holding or having taken money that no payment of ours names.

An intent that never held money (a declined card: `requires_payment_method`) is no
difference; nor is a payment still `authorizing` (its call to Stripe is under way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from common.tasks import Loop
from payments import repository
from payments.providers import PaymentProvider, ProviderUnavailable
from payments.repository import AUTHORIZED, AUTHORIZING, CAPTURED, PAYMENTS, REFUNDED, VOIDED

log = logging.getLogger(__name__)

HELD, TAKEN, RELEASED, RETURNED, NONE = "held", "taken", "released", "returned", "none"
OURS = {AUTHORIZED: HELD, CAPTURED: TAKEN, VOIDED: RELEASED, REFUNDED: RETURNED}


def where_stripe_has_it(intent: Mapping[str, Any], refunded: bool) -> str:
    status = intent.get("status")
    if status == "requires_capture":
        return HELD
    if status == "succeeded":
        return RETURNED if refunded else TAKEN
    if status == "canceled":
        return RELEASED
    return NONE


@dataclass(frozen=True)
class Difference:
    kind: str  # state, amount, missing, unknown
    intent: str
    payment: str | None
    ours: str
    theirs: str

    def __str__(self) -> str:
        return f"{self.kind}: intent {self.intent} (payment {self.payment}): ours {self.ours}, Stripe's {self.theirs}"


def differences(
    payments: Iterable[Mapping[str, Any]],
    intents: Iterable[Mapping[str, Any]],
    refunded_intents: set[str],
) -> list[Difference]:
    """Each payment of ours (with its intent) against Stripe's intents and refunds."""
    theirs = {str(intent["id"]): intent for intent in intents}
    found: list[Difference] = []
    named: set[str] = set()
    for payment in payments:
        intent_id, status = payment.get("stripeId"), payment.get("status")
        if not intent_id or status == AUTHORIZING:
            continue
        named.add(intent_id)
        payment_id = str(payment["_id"])
        ours = OURS.get(str(status), NONE)
        intent = theirs.get(intent_id)
        if intent is None:
            found.append(Difference("missing", intent_id, payment_id, ours, "no such intent"))
            continue
        stripe = where_stripe_has_it(intent, intent_id in refunded_intents)
        if stripe != ours:
            found.append(Difference("state", intent_id, payment_id, ours, stripe))
        if intent.get("amount") != payment.get("amountCents"):
            found.append(
                Difference(
                    "amount",
                    intent_id,
                    payment_id,
                    str(payment.get("amountCents")),
                    str(intent.get("amount")),
                )
            )
    for intent_id, intent in theirs.items():
        stripe = where_stripe_has_it(intent, intent_id in refunded_intents)
        if intent_id not in named and stripe in (HELD, TAKEN):
            found.append(Difference("unknown", intent_id, None, "no payment", stripe))
    return found


@dataclass
class Run:
    """One reconciliation: what it compared, what it healed, what differs still, and how
    many payments were too young to compare (within the grace)."""

    payments: int
    charges: int
    healed: list[Difference]
    left: list[Difference]
    too_young: int = 0


class Reconciler:
    """A payments worker (`common.context.Worker`): every `interval` seconds (0: never by
    itself), our payments of the last `period` against the provider's books. An
    authorization the provider still holds that no order will take — ours says it was
    voided, or no payment of ours names it — is voided (the one rule that is clear);
    every other difference is logged and counted (`payments_reconciliation_differences`,
    alerted on: docs/observability.md). Payments younger than `grace` are left out:
    the settler may be moving them."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        provider: PaymentProvider,
        *,
        interval: float = 900.0,
        period: timedelta = timedelta(days=7),
        grace: timedelta = timedelta(minutes=2),
    ) -> None:
        self.db, self.provider, self.period, self.grace = db, provider, period, grace
        self.interval = interval
        self.left = 0  # differences the last run could not heal
        self._loop = Loop("payments-reconciler", self._step, pause=interval or 1.0)

    async def start(self) -> None:
        if self.interval > 0:
            self._loop.start()

    async def stop(self) -> None:
        if self.interval > 0:
            await self._loop.stop()

    async def _step(self) -> None:
        await asyncio.sleep(self.interval)
        try:
            await self.run()
        except ProviderUnavailable as exc:
            log.warning("reconciliation not run: %s", exc)

    async def run(self, now: datetime | None = None, *, heal: bool = True) -> Run:
        now = now or datetime.now(UTC)
        since, settled = now - self.period, now - self.grace
        records = await self.provider.records(since)
        window = await self.db[PAYMENTS].find({"createdAt": {"$gte": since - self.grace}}).to_list()
        ours = [p for p in window if p["createdAt"] < settled]  # one read, split in two
        young = [p for p in window if p["createdAt"] >= settled]
        recent = {p["stripeId"] for p in young if p.get("stripeId")}
        charges = [
            c
            for c in records.charges
            if c["id"] not in recent and c.get("created", 0) < settled.timestamp()
        ]
        healed, left = [], []
        for difference in differences(ours, charges, records.refunded):
            if heal and await self._heal(difference, charges):
                healed.append(difference)
            else:
                left.append(difference)
                log.warning("reconciliation: %s", difference)
        self.left = len(left)
        log.info(
            "reconciliation: %d payments, %d charges; %d healed, %d left",
            len(ours), len(charges), len(healed), len(left),
        )  # fmt: skip
        return Run(len(ours), len(charges), healed, left, too_young=len(young))

    async def _heal(self, difference: Difference, charges: list[dict[str, Any]]) -> bool:
        """Void a hold no order will take: ours voided it, or no payment of ours names
        it (its attempt was dropped). Returns whether it was healed."""
        if difference.theirs != HELD:
            return False
        if difference.kind == "unknown":
            [charge] = [c for c in charges if c["id"] == difference.intent]
            named = (charge.get("metadata") or {}).get("payment", "")
            if named and await repository.get_payment_by_id(self.db, named) is not None:
                return (
                    False  # an attempt whose answer was lost: the settler or a webhook records it
                )
        elif not (difference.kind == "state" and difference.ours == RELEASED):
            return False
        await self.provider.void(
            difference.intent, idempotency_key=f"reconcile-void-{difference.intent}"
        )
        log.info("reconciliation: voided %s (%s)", difference.intent, difference)
        return True
