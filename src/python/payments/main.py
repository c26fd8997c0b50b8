"""Entry point: `./pants run src/python/payments:payments` (settings from the environment)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from common.app import create_app, run_service
from common.nats_client import NatsClientManager
from common.settings import load_settings
from payments.api.routes import payments, webhooks
from payments.core.config import PaymentsSettings
from payments.listeners import LISTENERS
from payments.providers import PaymentProvider, provider_from
from payments.repository import INDEXES, PAYMENTS
from payments.settlement import Settler


def create_payments_app(
    settings: PaymentsSettings,
    database: str = "payments",
    nats: NatsClientManager | None = None,
    provider: PaymentProvider | None = None,  # tests pass their own
) -> FastAPI:
    provider = provider or provider_from(settings)
    return create_app(
        name="payments",
        settings=settings,
        database=database,
        routers=[payments.router, webhooks.router],
        indexes=INDEXES,
        outbox=[PAYMENTS],
        listeners=LISTENERS,
        workers=[
            Settler(
                provider,
                interval=settings.settle_interval,
                stale_after=timedelta(seconds=settings.stale_attempt_seconds),
            )
        ],
        provides={PaymentProvider: provider},
        nats=nats,
    )


def main() -> None:
    settings = load_settings(PaymentsSettings)
    run_service(create_payments_app(settings), settings)


if __name__ == "__main__":
    main()
