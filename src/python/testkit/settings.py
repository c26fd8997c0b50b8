"""Settings for a service under test: the real servers, the test JWT key, quick relay —
as objects (in-process apps) or as environment variables (service processes)."""

from __future__ import annotations

from typing import Any, TypeVar

from common.settings import ProcessSettings
from testkit.auth import TEST_JWT_KEY

S = TypeVar("S", bound=ProcessSettings)


def settings_for(cls: type[S], mongo_server: Any, nats_server: Any, **overrides: Any) -> S:
    """`cls` (an EventingSettings) on these servers; `overrides` win."""
    values = {
        "mongo_uri": mongo_server.uri,
        "nats_url": nats_server.url,
        "jwt_key": TEST_JWT_KEY,
        "cookie_secure": False,
        "nats_client_id": "service-test",
        "publish_timeout": 2.0,
        "outbox_interval": 0.1,
        # tests make many writes as one user; the limits' own tests set theirs
        "user_writes_per_minute": 0,
        "user_writes_per_day": 0,
        **overrides,
    }
    return cls(**values)


def process_env(mongo_server: Any, nats_server: Any, **extra: str) -> dict[str, str]:
    """The environment of a service process (`harness.servers.ServiceProcess`) on these
    servers with the test JWT key; `extra` variables added."""
    return {
        "MONGO_URI": mongo_server.uri,
        "NATS_URL": nats_server.url,
        "JWT_KEY": TEST_JWT_KEY,
        "COOKIE_SECURE": "false",
        "USER_WRITES_PER_MINUTE": "0",
        "USER_WRITES_PER_DAY": "0",
        **extra,
    }
