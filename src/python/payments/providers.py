"""Payment providers behind one small interface, chosen by `PAYMENT_PROVIDER`.

- `test` (the default for `./run` and the tests): behaves like Stripe's documented test
  tokens, moves no money, and is idempotent by key like Stripe;
- `stripe`: the official SDK, PaymentIntents created and confirmed with the card token,
  with Stripe's `Idempotency-Key`, so a retried request never charges twice.

Amounts are integer cents end to end.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
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

    async def charge(
        self, *, amount_cents: int, currency: str, token: str, idempotency_key: str
    ) -> Charge: ...


# Stripe's documented test tokens: those that succeed, and declines with Stripe's words.
TEST_CARDS = ("tok_visa", "tok_visa_debit", "tok_mastercard", "tok_amex", "tok_discover")
TEST_DECLINES = {
    "tok_chargeDeclined": "Your card was declined.",
    "tok_chargeDeclinedInsufficientFunds": "Your card has insufficient funds.",
    "tok_chargeDeclinedExpiredCard": "Your card has expired.",
}


class TestProvider:
    """No real money. A charge's id follows from its idempotency key, so the same key
    gives the same charge in any process, after any restart — as Stripe does."""

    name = "test"

    def __init__(self) -> None:
        self.charged: dict[str, int] = {}  # idempotency key -> amount, for the tests

    async def charge(
        self, *, amount_cents: int, currency: str, token: str, idempotency_key: str
    ) -> Charge:
        if token in TEST_DECLINES:
            raise CardDeclined(TEST_DECLINES[token])
        if token not in TEST_CARDS:
            raise InvalidToken(token)
        self.charged.setdefault(idempotency_key, amount_cents)
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        return Charge(id=f"pi_test_{digest}")


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

    async def charge(
        self, *, amount_cents: int, currency: str, token: str, idempotency_key: str
    ) -> Charge:
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params={
                    "amount": amount_cents,
                    "currency": currency,
                    "payment_method_data": {"type": "card", "card": {"token": token}},
                    "payment_method_types": ["card"],
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
        if intent.status != "succeeded":  # e.g. requires_action (3-D Secure): not supported
            raise CardDeclined("This card needs an extra step the checkout does not support.")
        return Charge(id=intent.id)

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
