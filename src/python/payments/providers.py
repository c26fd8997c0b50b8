"""Payment providers behind one small interface, chosen by `PAYMENT_PROVIDER`.

Money moves in two steps, as card payments do when the seller must confirm first:
`authorize` holds the amount on the card (nothing is taken yet); once orders has
accepted the order, `capture` takes it; if orders refuses it, `void` releases the hold;
a capture that must be undone is `refund`ed. Every call carries an idempotency key, so
a retried call (a timeout, a crash and restart) never moves money twice.

- `test` (the default for `./run` and the tests): behaves like Stripe's documented test
  tokens, moves no money, and is idempotent by key like Stripe;
- `stripe`: the official SDK, a PaymentIntent with `capture_method=manual`, confirmed
  with the card token; capture, cancel (void) and refunds by its id.

Amounts are integer cents end to end.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

import stripe

from payments.core.config import PaymentsSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Charge:
    id: str  # the provider's id (Stripe: the PaymentIntent's `pi_...`)


class CardDeclined(Exception):
    """The card was refused; the message is the provider's, for the buyer."""


class InvalidToken(Exception):
    """The token names no card."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or failed; whether money moved is unknown, so a
    retry must reuse the same idempotency key."""


class PaymentProvider(Protocol):
    name: str

    async def authorize(
        self, *, amount_cents: int, currency: str, token: str, idempotency_key: str
    ) -> Charge: ...

    async def capture(self, charge_id: str, *, idempotency_key: str) -> None: ...

    async def void(self, charge_id: str, *, idempotency_key: str) -> None: ...

    async def refund(self, charge_id: str, *, idempotency_key: str) -> None: ...


# Stripe's documented test tokens: those that succeed, and declines with Stripe's words.
TEST_CARDS = ("tok_visa", "tok_visa_debit", "tok_mastercard", "tok_amex", "tok_discover")
TEST_DECLINES = {
    "tok_chargeDeclined": "Your card was declined.",
    "tok_chargeDeclinedInsufficientFunds": "Your card has insufficient funds.",
    "tok_chargeDeclinedExpiredCard": "Your card has expired.",
}


@dataclass
class TestProvider:
    """No real money. A charge's id follows from its idempotency key, so the same key
    gives the same charge in any process, after any restart — as Stripe does. `state`
    and `calls` are this process's record of what it was asked (for the tests)."""

    __test__ = False  # not a pytest class, despite its name

    name: str = "test"
    state: dict[str, str] = field(default_factory=dict)  # charge id -> its last state
    amounts: dict[str, int] = field(default_factory=dict)  # charge id -> cents
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, charge id)

    async def authorize(
        self, *, amount_cents: int, currency: str, token: str, idempotency_key: str
    ) -> Charge:
        if token in TEST_DECLINES:
            raise CardDeclined(TEST_DECLINES[token])
        if token not in TEST_CARDS:
            raise InvalidToken(token)
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        charge = Charge(id=f"pi_test_{digest}")
        self.calls.append(("authorize", charge.id))
        self.state.setdefault(charge.id, "authorized")
        self.amounts.setdefault(charge.id, amount_cents)
        return charge

    async def capture(self, charge_id: str, *, idempotency_key: str) -> None:
        self._move(charge_id, "capture", frm=("authorized", None), to="captured")

    async def void(self, charge_id: str, *, idempotency_key: str) -> None:
        self._move(charge_id, "void", frm=("authorized", None), to="voided")

    async def refund(self, charge_id: str, *, idempotency_key: str) -> None:
        self._move(charge_id, "refund", frm=("captured", None), to="refunded")

    def _move(self, charge_id: str, operation: str, *, frm: tuple, to: str) -> None:
        """Idempotent like Stripe's: repeating a move that happened is a no-op; a move
        from the wrong state is the provider refusing it (a bug on our side). A charge
        this process never saw (authorized by a process since restarted) is taken as
        being where the move starts."""
        self.calls.append((operation, charge_id))
        now = self.state.get(charge_id)
        if now == to:
            return
        if now not in frm:
            raise ProviderUnavailable(f"cannot {operation} a charge that is {now}")
        self.state[charge_id] = to


class StripeProvider:
    name = "stripe"

    def __init__(self, secret_key: str, api_base: str) -> None:
        self._http = stripe.HTTPXClient(timeout=20)  # one connection pool per process
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=2,  # safe: every request carries its idempotency key
        )

    async def authorize(
        self, *, amount_cents: int, currency: str, token: str, idempotency_key: str
    ) -> Charge:
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params={
                    "amount": amount_cents,
                    "currency": currency,
                    "payment_method_data": {"type": "card", "card": {"token": token}},
                    "payment_method_types": ["card"],
                    "capture_method": "manual",
                    "confirm": True,
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            raise CardDeclined(exc.user_message or "Your card was declined.") from exc
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing" or (exc.param or "").endswith("[token]"):
                raise InvalidToken(token) from exc
            raise ProviderUnavailable(f"Stripe refused the request: {exc.user_message}") from exc
        except stripe.StripeError as exc:
            raise ProviderUnavailable(f"Stripe failed: {exc.user_message or exc}") from exc
        if intent.status != "requires_capture":  # e.g. requires_action (3-D Secure)
            raise CardDeclined("This card needs an extra step the checkout does not support.")
        return Charge(id=intent.id)

    async def capture(self, charge_id: str, *, idempotency_key: str) -> None:
        await self._call(
            self.client.v1.payment_intents.capture_async(
                charge_id, options={"idempotency_key": idempotency_key}
            )
        )

    async def void(self, charge_id: str, *, idempotency_key: str) -> None:
        await self._call(
            self.client.v1.payment_intents.cancel_async(
                charge_id, options={"idempotency_key": idempotency_key}
            )
        )

    async def refund(self, charge_id: str, *, idempotency_key: str) -> None:
        await self._call(
            self.client.v1.refunds.create_async(
                params={"payment_intent": charge_id},
                options={"idempotency_key": idempotency_key},
            )
        )

    @staticmethod
    async def _call(request: object) -> None:
        """A settling call: any failure is retried later with the same key."""
        try:
            await request  # type: ignore[misc]
        except stripe.StripeError as exc:
            raise ProviderUnavailable(f"Stripe failed: {exc.user_message or exc}") from exc

    async def close(self) -> None:
        await self._http.close_async()


def provider_from(settings: PaymentsSettings) -> PaymentProvider:
    if settings.payment_provider == "stripe":
        assert settings.stripe_secret_key is not None  # the settings checked it
        log.info("payments: provider stripe at %s (real money)", settings.stripe_api_base)
        return StripeProvider(
            settings.stripe_secret_key.get_secret_value(), settings.stripe_api_base
        )
    log.warning("payments: provider test — no real money moves (Stripe's test tokens)")
    return TestProvider()
