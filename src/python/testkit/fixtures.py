"""pytest fixtures: real servers per test process, a clean database per test, fakes.

Servers are session-scoped: Pants runs each test file as its own pytest process, so
each file gets its own NATS and MongoDB-wire server, stopped when the file is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from nats.js.errors import NotFoundError, ServerError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from common.events.contracts import STREAM_NAME
from common.nats_client import NatsClientManager
from harness.servers import MongoServer, NatsServer
from testkit.fakes import RecordingNats

__all__ = [
    "clean_db",
    "mongo_client",
    "mongo_server",
    "nats_manager",
    "nats_server",
    "recording_nats",
]


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with NatsServer(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    with MongoServer(tmp_path_factory.mktemp("mongo")) as server:
        yield server


@pytest.fixture
async def mongo_client(mongo_server: MongoServer) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_server.uri, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    yield client
    await client.close()


@pytest.fixture
async def clean_db(mongo_client: AsyncMongoClient[Any]) -> AsyncIterator[AsyncDatabase[Any]]:
    """A database of its own for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    await mongo_client.drop_database(name)


STREAM_STORE_TRIES = 5


@pytest.fixture
async def nats_manager(nats_server: NatsServer) -> AsyncIterator[NatsClientManager]:
    """A connected client manager with a new, empty TICKETING stream for this test
    (a new stream also forgets the dedupe ids of earlier tests)."""
    manager = NatsClientManager()
    await manager.connect(nats_server.url, f"test-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(NotFoundError):
        await manager.jetstream.delete_stream(STREAM_NAME)
    for attempt in range(STREAM_STORE_TRIES):
        try:
            await manager.ensure_stream()
            break
        except ServerError as exc:
            # nats-server can still be removing the deleted stream's store (seen once in
            # CI: "error creating store for stream", err_code 10049): try again shortly
            if exc.err_code != 10049 or attempt == STREAM_STORE_TRIES - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    yield manager
    await manager.drain()


@pytest.fixture
def recording_nats() -> RecordingNats:
    return RecordingNats()
