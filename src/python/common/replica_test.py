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


async def test_a_predecessor_written_between_the_update_and_the_read_is_not_taken_for_a_duplicate(
    clean_db,
):
    """The race two listeners run into: version 1's update misses (no document yet), then
    version 0 is inserted, then version 1's check reads version 0 — it must apply, not be
    dropped as a duplicate."""

    class InsertsBeforeTheRead:
        def __init__(self, collection) -> None:
            self.collection = collection
            self.raced = False

        async def update_one(self, *args, **kwargs):
            return await self.collection.update_one(*args, **kwargs)

        async def find_one(self, *args, **kwargs):
            if not self.raced:  # the other listener's insert lands right here
                self.raced = True
                await apply_in_order(self.collection, "t1", 0, {"title": "v0"})
            return await self.collection.find_one(*args, **kwargs)

    racing = InsertsBeforeTheRead(clean_db.replica)
    assert await apply_in_order(racing, "t1", 1, {"title": "v1"}) is True
    assert await clean_db.replica.find_one({"_id": "t1"}) == {
        "_id": "t1",
        "title": "v1",
        "version": 1,
    }
