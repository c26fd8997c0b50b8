"""Payment providers behind one small interface, chosen by `PAYMENT_PROVIDER`.

Money moves in two steps, as card payments do when the seller must confirm first:
`authorize` holds the amount on the card (nothing is taken yet); once orders has
accepted the order, `capture` takes it; if orders refuses it, `void` releases the hold;
a capture that must be undone is `refund`ed. Every call carries an idempotency key, so
a retried call (a timeout, a crash and restart) never moves money twice.

- `test` (the default for `./run` and the tests): behaves like Stripe's documented test
  tokens, moves no money, and is idempotent by key like Stripe; given a directory
  (`TEST_PROVIDER_DIR`, the storm's) it keeps its ledger there, so a restarted
  service finds its charges as Stripe would, and fails as a `fault` file there says;
- `stripe`: the official SDK, a PaymentIntent with `capture_method=manual`, confirmed
  with the card token; capture, cancel (void) and refunds by its id.

Amounts are integer cents end to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import stripe

from payments.core.config import PaymentsSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Charge:
    id: str  # the provider's id (Stripe: the PaymentIntent's `pi_...`)


@dataclass(frozen=True)
class Records:
    charges: list[dict[str, Any]]
    refunded: set[str]


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
        self,
        *,
        amount_cents: int,
        currency: str,
        token: str,
        idempotency_key: str,
        reference: str = "",
    ) -> Charge:
        """A hold; `reference`: our payment's id, kept with the provider's charge (a
        webhook about a charge whose answer we lost names the payment by it)."""
        ...

    async def capture(self, charge_id: str, *, idempotency_key: str) -> None: ...

    async def void(self, charge_id: str, *, idempotency_key: str) -> None: ...

    async def refund(self, charge_id: str, *, idempotency_key: str) -> None: ...

    async def records(self, since: datetime) -> Records:
        """The provider's own books since `since`: its charges as Stripe shows
        PaymentIntents (`{id, status, amount, metadata}`), and the ids of those refunded
        (what the reconciliation compares ours with)."""
        ...


# Stripe's documented test tokens: those that succeed, and declines with Stripe's words.
TEST_CARDS = ("tok_visa", "tok_visa_debit", "tok_mastercard", "tok_amex", "tok_discover")
TEST_DECLINES = {
    "tok_chargeDeclined": "Your card was declined.",
    "tok_chargeDeclinedInsufficientFunds": "Your card has insufficient funds.",
    "tok_chargeDeclinedExpiredCard": "Your card has expired.",
}


FAULTS = ("fail", "timeout")
"""What a `fault` file in the test provider's directory makes every call do: `fail`
refuses before anything moves (the provider down); `timeout` makes the move and loses
its answer (the worst timeout: money moved, the caller cannot know)."""
LOST_ANSWER_SECONDS = 3.0


@dataclass
class TestProvider:
    """No real money. A charge's id follows from its idempotency key, so the same key
    gives the same charge in any process, after any restart — as Stripe does. `state`
    and `calls` are this process's record of what it was asked (for the tests); with
    a `home` directory, `state` is also kept in `home/ledger.jsonl` (one line a move,
    read back at start) and `home/fault` injects failures (`FAULTS`)."""

    __test__ = False  # not a pytest class, despite its name

    name: str = "test"
    home: Path | None = None
    state: dict[str, str] = field(default_factory=dict)  # charge id -> its last state
    amounts: dict[str, int] = field(default_factory=dict)  # charge id -> cents
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, charge id)
    created: dict[str, float] = field(default_factory=dict)  # charge id -> first seen (epoch)

    def __post_init__(self) -> None:
        if self.home is not None:
            self.home.mkdir(parents=True, exist_ok=True)
            self.state, self.amounts = read_ledger(self.home)
            self.created = _first_seen(self.home)

    @staticmethod
    def charge_id(idempotency_key: str) -> str:
        return f"pi_test_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"

    async def authorize(
        self,
        *,
        amount_cents: int,
        currency: str,
        token: str,
        idempotency_key: str,
        reference: str = "",
    ) -> Charge:
        charge = Charge(id=self.charge_id(idempotency_key))

        def hold() -> None:
            if token in TEST_DECLINES:
                raise CardDeclined(TEST_DECLINES[token])
            if token not in TEST_CARDS:
                raise InvalidToken(token)
            self.calls.append(("authorize", charge.id))
            self.amounts.setdefault(charge.id, amount_cents)
            if charge.id not in self.state:
                self._record(charge.id, "authorized")

        await self._call(hold)
        return charge

    async def capture(self, charge_id: str, *, idempotency_key: str) -> None:
        await self._call(
            lambda: self._move(charge_id, "capture", frm=("authorized", None), to="captured")
        )

    async def void(self, charge_id: str, *, idempotency_key: str) -> None:
        await self._call(
            lambda: self._move(charge_id, "void", frm=("authorized", None), to="voided")
        )

    async def refund(self, charge_id: str, *, idempotency_key: str) -> None:
        await self._call(
            lambda: self._move(charge_id, "refund", frm=("captured", None), to="refunded")
        )

    async def records(self, since: datetime) -> Records:
        """Its ledger's charges first seen since `since`, as Stripe would show them."""
        shown = {"authorized": "requires_capture", "captured": "succeeded", "voided": "canceled"}
        charges = [
            {
                "id": charge,
                "status": shown.get(state, "succeeded"),
                "amount": self.amounts.get(charge),
                "created": int(self.created.get(charge, 0)),
            }
            for charge, state in self.state.items()
            if self.created.get(charge, 0) >= since.timestamp()
        ]
        return Records(charges, {c for c, state in self.state.items() if state == "refunded"})

    def _move(self, charge_id: str, operation: str, *, frm: tuple, to: str) -> None:
        """Idempotent like Stripe's: repeating a move that happened is a no-op; a move
        from the wrong state is the provider refusing it (a bug on our side). A charge
        this process never saw (authorized by a process since restarted, without a
        ledger) is taken as being where the move starts."""
        self.calls.append((operation, charge_id))
        now = self.state.get(charge_id)
        if now == to:
            return
        if now not in frm:
            raise ProviderUnavailable(f"cannot {operation} a charge that is {now}")
        self._record(charge_id, to)

    async def _call(self, move: Callable[[], None]) -> None:
        fault = self._fault()
        if fault == "fail":
            raise ProviderUnavailable("the test provider is failing (an injected fault)")
        move()
        if fault == "timeout":
            await asyncio.sleep(LOST_ANSWER_SECONDS)
            raise ProviderUnavailable("the test provider timed out (an injected fault)")

    def _fault(self) -> str | None:
        if self.home is None:
            return None
        try:
            fault = (self.home / "fault").read_text().strip()
        except FileNotFoundError:
            return None
        return fault if fault in FAULTS else None

    def _record(self, charge_id: str, state: str) -> None:
        self.state[charge_id] = state
        first = self.created.setdefault(charge_id, time.time())
        if self.home is not None:
            line = {
                "charge": charge_id,
                "state": state,
                "amountCents": self.amounts.get(charge_id),
                "at": first if state == "authorized" else time.time(),
            }
            with (self.home / "ledger.jsonl").open("a") as ledger:
                ledger.write(json.dumps(line) + "\n")


def read_ledger(home: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The test provider's charges from its ledger: each one's last state, its amount."""
    state: dict[str, str] = {}
    amounts: dict[str, int] = {}
    path = home / "ledger.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            move = json.loads(line)
            state[move["charge"]] = move["state"]
            if move["amountCents"] is not None:
                amounts[move["charge"]] = move["amountCents"]
    return state, amounts


def _first_seen(home: Path) -> dict[str, float]:
    """When the ledger first named each charge (0: a line from before it said when)."""
    first: dict[str, float] = {}
    path = home / "ledger.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            move = json.loads(line)
            first.setdefault(move["charge"], float(move.get("at", 0)))
    return first


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
        self,
        *,
        amount_cents: int,
        currency: str,
        token: str,
        idempotency_key: str,
        reference: str = "",
    ) -> Charge:
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params={
                    "amount": amount_cents,
                    "currency": currency,
                    "metadata": {"payment": reference} if reference else {},
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

    async def records(self, since: datetime) -> Records:
        window = {"created": {"gte": int(since.timestamp())}, "limit": 100}
        try:
            intents = [
                i.to_dict() for i in await self._every(self.client.v1.payment_intents, window)
            ]
            refunds = await self._every(self.client.v1.refunds, window)
        except stripe.StripeError as exc:
            raise ProviderUnavailable(f"Stripe failed: {exc.user_message or exc}") from exc
        return Records(intents, {str(r.payment_intent) for r in refunds if r.payment_intent})

    @staticmethod
    async def _every(listing: Any, params: dict[str, Any]) -> list[Any]:
        """Every page of a list."""
        found: list[Any] = []
        while True:
            page = await listing.list_async(params=params)
            found += page.data
            if not page.has_more or not page.data:
                return found
            params = {**params, "starting_after": page.data[-1].id}

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
    return TestProvider(home=settings.test_provider_dir)
