"""Mongo helpers against the REAL MongoDB-wire server."""

import pytest
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from common.mongo import (
    create_mongo_client,
    ensure_indexes,
    parse_object_id,
    ping,
)


async def test_ensure_indexes_is_idempotent_and_enforces_uniqueness(clean_db):
    indexes = {"users": [IndexModel([("email", ASCENDING)], unique=True)]}
    await ensure_indexes(clean_db, indexes)
    await ensure_indexes(clean_db, indexes)
    await clean_db.users.insert_one({"email": "a@b.c"})
    with pytest.raises(DuplicateKeyError):
        await clean_db.users.insert_one({"email": "a@b.c"})


def test_parse_object_id():
    assert str(parse_object_id("5f1b2c3d4e5f6a7b8c9d0e1f")) == "5f1b2c3d4e5f6a7b8c9d0e1f"
    for malformed in ("", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "5f1b2c3d4e5f6a7b8c9d0e1f0"):
        assert parse_object_id(malformed) is None


async def test_ping_reports_reachability(mongo_server):
    client = create_mongo_client(mongo_server.uri, "ping-test")
    assert await ping(client)
    await client.close()
    unreachable = create_mongo_client(
        "mongodb://127.0.0.1:1/?directConnection=true", "ping-test", server_selection_timeout_ms=200
    )
    assert await ping(unreachable, timeout=0.2) is False
    await unreachable.close()
