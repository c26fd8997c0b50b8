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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from payments.repository import AUTHORIZED, AUTHORIZING, CAPTURED, REFUNDED, VOIDED

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
