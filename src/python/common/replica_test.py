"""apply_in_order against the REAL MongoDB-wire server (its use by a listener on a real
stream: events/listener_test.py)."""

import asyncio

import pytest

from common.events import EventAhead
from common.replica import apply_in_order


async def test_next_version_applies_duplicates_are_ignored_early_ones_wait(clean_db):
    replica = clean_db.replica
    assert await apply_in_order(replica, "t1", 0, {"title": "v0"}) is True
    assert await apply_in_order(replica, "t1", 0, {"title": "v0 again"}) is False
    with pytest.raises(EventAhead):
        await apply_in_order(replica, "t1", 2, {"title": "v2"})
    assert await apply_in_order(replica, "t1", 1, {"title": "v1"}) is True
    assert await apply_in_order(replica, "t1", 2, {"title": "v2"}) is True
    assert await apply_in_order(replica, "t1", 1, {"title": "v1 again"}) is False
    assert await replica.find_one({"_id": "t1"}) == {"_id": "t1", "title": "v2", "version": 2}


async def test_an_update_before_the_create_waits(clean_db):
    with pytest.raises(EventAhead):
        await apply_in_order(clean_db.replica, "t1", 1, {"title": "v1"})
    assert await clean_db.replica.count_documents({}) == 0


async def test_concurrent_replicas_apply_each_version_once(clean_db):
    await apply_in_order(clean_db.replica, "t1", 0, {"title": "v0"})
    results = await asyncio.gather(
        *(apply_in_order(clean_db.replica, "t1", 1, {"title": "v1"}) for _ in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]
    duplicates = await asyncio.gather(
        *(apply_in_order(clean_db.replica, "t2", 0, {"title": "v0"}) for _ in range(8))
    )
    assert sorted(duplicates) == [False] * 7 + [True]
