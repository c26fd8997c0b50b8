from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from auth.core.config import AuthSettings
from auth.main import create_auth_app
from common.testing.auth import TEST_JWT_KEY
from common.testing.fixtures import *  # noqa: F403
from common.testing.http import app_client

# Cheap argon2 parameters: tests exercise the logic, not the cost.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


@pytest.fixture
def make_settings(mongo_server) -> Callable[..., AuthSettings]:
    def _make(**overrides) -> AuthSettings:
        values = {
            "mongo_uri": mongo_server.uri,
            "jwt_key": TEST_JWT_KEY,
            "cookie_secure": False,
            **FAST_ARGON2,
            **overrides,
        }
        return AuthSettings(**values)

    return _make


@pytest.fixture
async def client(make_settings, clean_db) -> AsyncIterator[httpx.AsyncClient]:
    """The auth app on the real MongoDB-wire server, with a database of its own."""
    async with app_client(create_auth_app(make_settings(), database=clean_db.name)) as c:
        yield c
