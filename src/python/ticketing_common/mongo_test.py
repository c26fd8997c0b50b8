"""Mongo helpers against the REAL MongoDB-wire server."""

import asyncio

import pytest
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from ticketing_common.mongo import (
    VersionConflict,
    create_mongo_client,
    ensure_indexes,
    parse_object_id,
    ping,
    update_versioned,
)


async def test_update_versioned_applies_changes_and_bumps_version(clean_db):
    await clean_db.items.insert_one({"_id": 1, "title": "a", "version": 0})
    updated = await update_versioned(clean_db.items, 1, 0, {"title": "b"})
    assert updated == {"_id": 1, "title": "b", "version": 1}
    assert await clean_db.items.find_one({"_id": 1}) == updated


async def test_update_versioned_on_a_stale_version_is_a_conflict_and_changes_nothing(clean_db):
    await clean_db.items.insert_one({"_id": 1, "title": "a", "version": 3})
    with pytest.raises(VersionConflict) as info:
        await update_versioned(clean_db.items, 1, 2, {"title": "lost?"})
    assert info.value.status_code == 409
    assert await clean_db.items.find_one({"_id": 1}) == {"_id": 1, "title": "a", "version": 3}


async def test_concurrent_updates_of_one_version_one_wins_one_conflicts(clean_db):
    await clean_db.items.insert_one({"_id": 1, "title": "a", "version": 0})
    results = await asyncio.gather(
        *(update_versioned(clean_db.items, 1, 0, {"title": f"w{n}"}) for n in range(5)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert all(isinstance(r, VersionConflict) for r in results if r not in winners)
    assert (await clean_db.items.find_one({"_id": 1}))["version"] == 1


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


async def test_transactions_are_supported(mongo_client, clean_db):
    """The outbox pattern needs multi-document transactions: prove the server has them."""
    await clean_db.create_collection("a")
    await clean_db.create_collection("b")
    async with mongo_client.start_session() as session:
        async with await session.start_transaction():
            await clean_db.a.insert_one({"_id": 1}, session=session)
            await clean_db.b.insert_one({"_id": 1}, session=session)
    with pytest.raises(RuntimeError):
        async with mongo_client.start_session() as session:
            async with await session.start_transaction():
                await clean_db.a.insert_one({"_id": 2}, session=session)
                raise RuntimeError("abort")
    assert await clean_db.a.count_documents({}) == 1
    assert await clean_db.b.count_documents({}) == 1
