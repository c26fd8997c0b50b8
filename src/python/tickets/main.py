"""Entry point: `./pants run src/python/tickets:tickets` (settings from the environment)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ticketing_common.app import create_app, run_service
from ticketing_common.nats_client import NatsClientManager
from ticketing_common.outbox import OUTBOX_INDEXES, OutboxRelay
from ticketing_common.settings import load_settings
from tickets.api.routes.tickets import router
from tickets.core.config import TicketsSettings
from tickets.repository import INDEXES


def create_tickets_app(
    settings: TicketsSettings,
    database: str = "tickets",
    nats: NatsClientManager | None = None,  # tests pass the recording fake
) -> FastAPI:
    @asynccontextmanager
    async def outbox_relay(app: FastAPI) -> AsyncIterator[None]:
        relay = OutboxRelay(
            app.state.db,
            app.state.nats,
            publish_timeout=settings.publish_timeout,
            interval=settings.outbox_interval,
        )
        app.state.relay = relay
        await relay.start()
        try:
            yield
        finally:
            await relay.stop()

    return create_app(
        name="tickets",
        settings=settings,
        database=database,
        routers=[router],
        indexes={**INDEXES, **OUTBOX_INDEXES},
        extras=outbox_relay,
        nats=nats,
    )


def main() -> None:
    settings = load_settings(TicketsSettings)
    run_service(create_tickets_app(settings), settings)


if __name__ == "__main__":
    main()
