"""Entry point: `./pants run src/python/auth:auth` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from auth.api.routes.users import router
from auth.core.config import AuthSettings
from auth.core.passwords import Passwords
from auth.users import INDEXES, REVOKED_SESSIONS
from common.app import create_app, run_service
from common.context import context_of
from common.nats_client import NatsClientManager
from common.settings import load_settings


def create_auth_app(
    settings: AuthSettings, database: str = "auth", nats: NatsClientManager | None = None
) -> FastAPI:
    passwords = Passwords.from_settings(settings)
    app = create_app(
        name="auth",
        settings=settings,
        database=database,
        routers=[router],
        indexes=INDEXES,
        outbox=[REVOKED_SESSIONS],
        provides={Passwords: passwords},
        nats=nats,
    )
    metrics = context_of(app).metrics
    assert metrics is not None
    metrics.gauges["argon2_queue_length"] = (
        "Password hashes waiting for a slot (the argon2 memory budget)",
        lambda: passwords.waiting,
    )
    return app


def main() -> None:
    settings = load_settings(AuthSettings)
    run_service(create_auth_app(settings), settings)


if __name__ == "__main__":
    main()
