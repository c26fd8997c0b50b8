"""Entry point: `./pants run src/python/expiration:expiration` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from common.app import create_app, run_service
from common.nats_client import NatsClientManager
from common.settings import load_settings
from expiration.core.config import ExpirationSettings
from expiration.listeners import LISTENERS


def create_expiration_app(
    settings: ExpirationSettings, nats: NatsClientManager | None = None
) -> FastAPI:
    # No routes of its own and no database: /healthz, /readyz (NATS) and its listeners.
    return create_app(name="expiration", settings=settings, listeners=LISTENERS, nats=nats)


def main() -> None:
    settings = load_settings(ExpirationSettings)
    run_service(create_expiration_app(settings), settings)


if __name__ == "__main__":
    main()
