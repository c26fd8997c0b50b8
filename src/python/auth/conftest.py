from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from auth.core.config import AuthSettings
from auth.main import create_auth_app
from testkit.fixtures import *  # noqa: F403
from testkit.http import app_client
from testkit.settings import settings_for

# Cheap argon2 parameters: tests exercise the logic, not the cost.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


@pytest.fixture
def make_settings(mongo_server, nats_server) -> Callable[..., AuthSettings]:
    def _make(**overrides) -> AuthSettings:
        return settings_for(AuthSettings, mongo_server, nats_server, **{**FAST_ARGON2, **overrides})

    return _make


@pytest.fixture
async def client(make_settings, clean_db, nats_manager) -> AsyncIterator[httpx.AsyncClient]:
    """The auth app on the real MongoDB-wire server, with a database of its own, and a
    real nats-server (a fresh stream) for its sign-out events."""
    async with app_client(create_auth_app(make_settings(), database=clean_db.name)) as c:
        yield c
