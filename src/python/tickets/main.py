"""Entry point: `./pants run src/python/tickets:tickets` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from common.app import create_app, run_service
from common.context import DataContext
from common.nats_client import NatsClientManager
from common.settings import load_settings
from tickets.api.routes.tickets import router
from tickets.core.config import TicketsSettings
from tickets.listeners import LISTENERS
from tickets.repository import INDEXES, REFUSED_ORDERS, TICKETS


def create_tickets_app(
    settings: TicketsSettings, database: str = "tickets", nats: NatsClientManager | None = None
) -> FastAPI:
    context = DataContext(
        name="tickets",
        settings=settings,
        database=database,
        indexes=INDEXES,
        events_in=[TICKETS, REFUSED_ORDERS],
        listeners=LISTENERS,
        nats=nats or NatsClientManager(),  # tests pass the recording fake
    )
    return create_app(context, routers=[router])


def main() -> None:
    settings = load_settings(TicketsSettings)
    run_service("tickets", settings, lambda: create_tickets_app(settings))


if __name__ == "__main__":
    main()
