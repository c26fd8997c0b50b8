"""Entry point: `./pants run src/python/payments:payments` (settings from the environment)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from common.app import create_app, run_service
from common.context import DataContext
from common.metrics import metrics_of
from common.nats_client import NatsClientManager
from common.settings import load_settings
from payments.api.routes import payments, webhooks
from payments.core.config import PaymentsSettings
from payments.listeners import LISTENERS
from payments.parts import PaymentsParts
from payments.providers import PaymentProvider, provider_from
from payments.reconciliation import Reconciler
from payments.repository import INDEXES, PAYMENTS
from payments.settlement import Settler


def create_payments_app(
    settings: PaymentsSettings,
    database: str = "payments",
    nats: NatsClientManager | None = None,  # tests pass the recording fake
    provider: PaymentProvider | None = None,  # tests pass their own
) -> FastAPI:
    provider = provider or provider_from(settings)
    context = DataContext(
        name="payments",
        settings=settings,
        database=database,
        indexes=INDEXES,
        events_in=[PAYMENTS],
        listeners=LISTENERS,
        nats=nats or NatsClientManager(),
    )
    settler = Settler(
        context.db,
        context.outbox,
        provider,
        interval=settings.settle_interval,
        stale_after=timedelta(seconds=settings.stale_attempt_seconds),
    )
    keeps_books = settings.payment_provider == "stripe" or settings.test_provider_dir is not None
    reconciler = Reconciler(  # (the test provider in memory forgets its books on a restart)
        context.db,
        provider,
        interval=settings.reconcile_interval_seconds if keeps_books else 0,
        period=timedelta(hours=settings.reconcile_period_hours),
    )
    context.workers = [settler, reconciler]
    context.own = PaymentsParts(provider, settler)
    app = create_app(context, routers=[payments.router, webhooks.router])
    metrics_of(app).gauges["payments_reconciliation_differences"] = (
        "Differences between our payments and the provider's books the last "
        "reconciliation found and could not heal (0: the books agree)",
        lambda: reconciler.left,
    )
    return app


def main() -> None:
    settings = load_settings(PaymentsSettings)
    run_service("payments", settings, lambda: create_payments_app(settings))


if __name__ == "__main__":
    main()
