from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from common.testing.fixtures import *  # noqa: F403
from common.testing.http import app_client
from common.testing.settings import settings_for
from payments.core.config import PaymentsSettings
from payments.main import create_payments_app
from payments.providers import TestProvider


@pytest.fixture
def make_settings(mongo_server, nats_server) -> Callable[..., PaymentsSettings]:
    def _make(**overrides) -> PaymentsSettings:
        return settings_for(PaymentsSettings, mongo_server, nats_server, **overrides)

    return _make


@pytest.fixture
def provider() -> TestProvider:
    return TestProvider()


@pytest.fixture
async def client(
    make_settings, clean_db, recording_nats, provider
) -> AsyncIterator[httpx.AsyncClient]:
    """The payments app on the real MongoDB-wire server, events recorded by the fake."""
    app = create_payments_app(
        make_settings(), database=clean_db.name, nats=recording_nats, provider=provider
    )
    async with app_client(app) as c:
        yield c
