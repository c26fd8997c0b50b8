"""Where the services are. Read from the environment when the Reflex backend starts."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _url(name: str, default: str) -> str:
    return os.environ.get(name, default).rstrip("/")


@dataclass(frozen=True)
class WebSettings:
    auth_url: str
    tickets_url: str
    orders_url: str
    payments_url: str
    api_timeout: float
    # Set: the pay form collects the card with Stripe.js (needs internet); unset: the
    # payments service's test cards (no real money), the local default.
    stripe_publishable_key: str = ""

    @classmethod
    def from_env(cls) -> WebSettings:
        return cls(
            auth_url=_url("AUTH_URL", "http://127.0.0.1:3001"),
            tickets_url=_url("TICKETS_URL", "http://127.0.0.1:3002"),
            orders_url=_url("ORDERS_URL", "http://127.0.0.1:3003"),
            payments_url=_url("PAYMENTS_URL", "http://127.0.0.1:3004"),
            api_timeout=float(os.environ.get("API_TIMEOUT", "10")),
            stripe_publishable_key=os.environ.get("STRIPE_PUBLISHABLE_KEY", "").strip(),
        )
