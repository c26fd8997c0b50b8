"""Entry point: `./pants run src/python/tickets:tickets` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from common.app import create_app, run_service
from common.nats_client import NatsClientManager
from common.settings import load_settings
from tickets.api.routes.tickets import router
from tickets.core.config import TicketsSettings
from tickets.listeners import LISTENERS
from tickets.repository import INDEXES, REFUSED_ORDERS, TICKETS


def create_tickets_app(
    settings: TicketsSettings, database: str = "tickets", nats: NatsClientManager | None = None
) -> FastAPI:
    return create_app(
        name="tickets",
        settings=settings,
        database=database,
        routers=[router],
        indexes=INDEXES,
        outbox=[TICKETS, REFUSED_ORDERS],
        listeners=LISTENERS,
        nats=nats,  # tests pass the recording fake
    )


def main() -> None:
    settings = load_settings(TicketsSettings)
    run_service(create_tickets_app(settings), settings)


if __name__ == "__main__":
    main()
