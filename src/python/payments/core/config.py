"""Payments service settings (environment variables; see the README's table)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from common.settings import EventingSettings


class PaymentsSettings(EventingSettings):
    payment_provider: Literal["test", "stripe"] = Field(
        "test", description="test: Stripe's test tokens, no real money; stripe: real charges"
    )
    stripe_secret_key: SecretStr | None = Field(
        None, validate_default=True, description="From the `stripe-secret` Secret"
    )
    stripe_webhook_secret: SecretStr | None = Field(
        None,
        description="The webhook endpoint's signing secret (`whsec_…`, from the `stripe-secret` "
        "Secret): set, POST /api/payments/webhook takes Stripe's signed events",
    )
    stripe_webhook_tolerance_seconds: int = Field(
        300, gt=0, description="How old a webhook's signed timestamp may be (replays refused)"
    )
    stripe_api_base: str = Field(
        "https://api.stripe.com", description="Stripe's API address (tests aim it at a stand-in)"
    )
    currency: str = Field("usd", min_length=3, max_length=3, description="ISO 4217, lower case")
    settle_interval: float = Field(
        1.0, gt=0, description="Seconds between looks for payments to capture, void or refund"
    )
    stale_attempt_seconds: float = Field(
        60.0,
        gt=0,
        description="An attempt still authorizing this long after it began was left by a "
        "crash or a lost answer: once its order is over, the settler releases it",
    )
    reconcile_interval_seconds: float = Field(
        900.0,
        ge=0,
        description="Seconds between reconciliations of our payments with the provider's "
        "books (payments.reconciliation); 0: none",
    )
    reconcile_period_hours: float = Field(
        168.0, gt=0, description="How far back a reconciliation looks (a hold lasts 7 days)"
    )
    test_provider_dir: Path | None = Field(
        None,
        description="Dev and tests: the test provider keeps its ledger here and fails while "
        "a `fault` file here says `fail` or `timeout` (the storm's provider faults)",
    )

    @field_validator("stripe_secret_key")
    @classmethod
    def _needed_for_stripe(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("payment_provider") == "stripe" and not key:
            raise ValueError("must be defined when PAYMENT_PROVIDER=stripe")
        return key
