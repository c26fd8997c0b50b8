from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from common.testing.auth import TEST_JWT_KEY
from common.testing.fixtures import *  # noqa: F403
from common.testing.http import app_client
from orders.core.config import OrdersSettings
from orders.main import create_orders_app


@pytest.fixture
def make_settings(mongo_server, nats_server) -> Callable[..., OrdersSettings]:
    def _make(**overrides) -> OrdersSettings:
        values = {
            "mongo_uri": mongo_server.uri,
            "nats_url": nats_server.url,
            "jwt_key": TEST_JWT_KEY,
            "cookie_secure": False,
            "nats_client_id": "orders-test",
            "publish_timeout": 2.0,
            "outbox_interval": 0.1,
            **overrides,
        }
        return OrdersSettings(**values)

    return _make


@pytest.fixture
async def client(make_settings, clean_db, recording_nats) -> AsyncIterator[httpx.AsyncClient]:
    """The orders app on the real MongoDB-wire server, events recorded by the fake."""
    app = create_orders_app(make_settings(), database=clean_db.name, nats=recording_nats)
    async with app_client(app) as c:
        yield c
