"""Entry point: `./pants run src/python/orders:orders` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from common.app import create_app, run_service
from common.context import DataContext
from common.nats_client import NatsClientManager
from common.settings import load_settings
from orders.api.routes.orders import router
from orders.core.config import OrdersSettings
from orders.listeners import LISTENERS
from orders.repository import INDEXES, ORDERS


def create_orders_app(
    settings: OrdersSettings, database: str = "orders", nats: NatsClientManager | None = None
) -> FastAPI:
    context = DataContext(
        name="orders",
        settings=settings,
        database=database,
        indexes=INDEXES,
        events_in=[ORDERS],
        listeners=LISTENERS,
        nats=nats or NatsClientManager(),  # tests pass the recording fake
    )
    return create_app(context, routers=[router])


def main() -> None:
    settings = load_settings(OrdersSettings)
    run_service("orders", settings, lambda: create_orders_app(settings))


if __name__ == "__main__":
    main()
