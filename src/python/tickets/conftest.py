from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from testkit.fixtures import *  # noqa: F403
from testkit.http import app_client
from testkit.settings import settings_for
from tickets.core.config import TicketsSettings
from tickets.main import create_tickets_app


@pytest.fixture
def make_settings(mongo_server, nats_server) -> Callable[..., TicketsSettings]:
    def _make(**overrides) -> TicketsSettings:
        return settings_for(TicketsSettings, mongo_server, nats_server, **overrides)

    return _make


@pytest.fixture
async def client(make_settings, clean_db, recording_nats) -> AsyncIterator[httpx.AsyncClient]:
    """The tickets app on the real MongoDB-wire server, events recorded by the fake
    (the original's mocked nats-wrapper)."""
    app = create_tickets_app(make_settings(), database=clean_db.name, nats=recording_nats)
    async with app_client(app) as c:
        yield c


@pytest.fixture
async def live_client(make_settings, clean_db, nats_manager) -> AsyncIterator[httpx.AsyncClient]:
    """The tickets app on the real MongoDB-wire server AND a real nats-server; the
    `nats_manager` fixture gives the test a fresh TICKETING stream to read."""
    async with app_client(create_tickets_app(make_settings(), database=clean_db.name)) as c:
        yield c
