"""Entry point: `./pants run src/python/auth:auth` (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from auth.api.routes.users import router
from auth.core.config import AuthSettings
from auth.core.passwords import Passwords
from auth.users import INDEXES
from common.app import create_app, run_service
from common.settings import load_settings


def create_auth_app(settings: AuthSettings, database: str = "auth") -> FastAPI:
    app = create_app(
        name="auth", settings=settings, database=database, routers=[router], indexes=INDEXES
    )
    app.state.passwords = Passwords.from_settings(settings)
    return app


def main() -> None:
    settings = load_settings(AuthSettings)
    run_service(create_auth_app(settings), settings)


if __name__ == "__main__":
    main()
