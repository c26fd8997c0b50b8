"""`common.limits.reserve` on the REAL MongoDB-wire server: exact under simultaneous
attempts, one write per attempt whatever the windows, nothing changed by a refusal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from common.limits import Window, reserve

MINUTE = Window("minute", 5, timedelta(minutes=1))
DAY = Window("day", 7, timedelta(days=1))
WRITES = {"insert", "update", "delete", "findAndModify"}


class WriteCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @property
    def writes(self) -> int:
        return sum(name in WRITES for name in self.names)


async def test_simultaneous_attempts_get_exactly_the_limit_through(clean_db):
    results = await asyncio.gather(
        *(reserve(clean_db.counters, "u1", [MINUTE, DAY]) for _ in range(20))
    )
    assert results.count(None) == 5
    assert all(1 <= wait <= 61 for wait in results if wait is not None)
    record = await clean_db.counters.find_one({"_id": "u1"})
    assert record["minute"]["count"] == 5 and record["day"]["count"] == 5


async def test_one_write_per_attempt_and_a_refusal_changes_nothing(mongo_server, clean_db):
    commands = WriteCommands()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_server.uri, event_listeners=[commands], tz_aware=True
    )
    counters = client[clean_db.name].counters
    try:
        for _ in range(5):
            assert await reserve(counters, "u1", [MINUTE, DAY]) is None
        assert commands.writes == 5  # both windows counted, and the first one inserted
        before = commands.writes
        assert await reserve(counters, "u1", [MINUTE, DAY]) is not None
        assert commands.writes == before + 1  # the update that changed nothing
        record = await counters.find_one({"_id": "u1"})
        assert record["day"]["count"] == 5  # a refusal in the minute spends no day
    finally:
        await client.close()


async def test_a_passed_window_starts_again_and_the_longer_one_still_holds(clean_db):
    for _ in range(5):
        assert await reserve(clean_db.counters, "u1", [MINUTE, DAY]) is None
    ended = datetime.now(UTC) - timedelta(seconds=1)
    await clean_db.counters.update_one({"_id": "u1"}, {"$set": {"minute.end": ended}})
    results = await asyncio.gather(
        *(reserve(clean_db.counters, "u1", [MINUTE, DAY]) for _ in range(10))
    )
    assert results.count(None) == 2  # the day's 7 reached before the new minute's 5
    refused = [wait for wait in results if wait is not None]
    assert all(wait > 86_000 for wait in refused)  # the day's window, not a minute
    record = await clean_db.counters.find_one({"_id": "u1"})
    assert record["minute"]["count"] == 2 and record["day"]["count"] == 7
    assert record["expiresAt"] > datetime.now(UTC) + timedelta(hours=23)


async def test_no_windows_is_no_limit_and_no_write(clean_db):
    assert await reserve(clean_db.counters, "u1", []) is None
    assert await clean_db.counters.count_documents({}) == 0
