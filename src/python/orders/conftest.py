from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from orders.core.config import OrdersSettings
from orders.main import create_orders_app
from testkit.fixtures import *  # noqa: F403
from testkit.http import app_client
from testkit.settings import settings_for


@pytest.fixture
def make_settings(mongo_server, nats_server) -> Callable[..., OrdersSettings]:
    def _make(**overrides) -> OrdersSettings:
        return settings_for(OrdersSettings, mongo_server, nats_server, **overrides)

    return _make


@pytest.fixture
async def client(make_settings, clean_db, recording_nats) -> AsyncIterator[httpx.AsyncClient]:
    """The orders app on the real MongoDB-wire server, events recorded by the fake."""
    app = create_orders_app(make_settings(), database=clean_db.name, nats=recording_nats)
    async with app_client(app) as c:
        yield c
