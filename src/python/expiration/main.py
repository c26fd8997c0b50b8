"""Entry point: `./pants run src/python/expiration:expiration` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from common.app import create_app, run_service
from common.context import StreamContext
from common.nats_client import NatsClientManager
from common.settings import load_settings
from expiration.core.config import ExpirationSettings
from expiration.listeners import LISTENERS


def create_expiration_app(
    settings: ExpirationSettings, nats: NatsClientManager | None = None
) -> FastAPI:
    # No routes of its own and no database: /healthz, /readyz (NATS) and its listeners.
    context = StreamContext(
        name="expiration",
        settings=settings,
        listeners=LISTENERS,
        nats=nats or NatsClientManager(),  # tests pass the recording fake
    )
    return create_app(context)


def main() -> None:
    settings = load_settings(ExpirationSettings)
    run_service("expiration", settings, lambda: create_expiration_app(settings))


if __name__ == "__main__":
    main()
