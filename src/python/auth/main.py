"""Entry point: `./pants run src/python/auth:auth` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from auth.api.routes.users import router
from auth.core.config import AuthSettings
from auth.core.passwords import Passwords
from auth.users import INDEXES, REVOKED_SESSIONS
from common.app import create_app, run_service
from common.context import DataContext
from common.metrics import metrics_of
from common.nats_client import NatsClientManager
from common.settings import load_settings


def create_auth_app(
    settings: AuthSettings, database: str = "auth", nats: NatsClientManager | None = None
) -> FastAPI:
    passwords = Passwords.from_settings(settings)
    context = DataContext(
        name="auth",
        settings=settings,
        database=database,
        indexes=INDEXES,
        events_in=[REVOKED_SESSIONS],
        nats=nats or NatsClientManager(),  # tests pass the recording fake
        own=passwords,
    )
    app = create_app(context, routers=[router])
    metrics_of(app).gauges["argon2_queue_length"] = (
        "Password hashes waiting for a slot (the argon2 memory budget)",
        lambda: passwords.waiting,
    )
    return app


def main() -> None:
    settings = load_settings(AuthSettings)
    run_service("auth", settings, lambda: create_auth_app(settings))


if __name__ == "__main__":
    main()
