"""Expiration schedules on a REAL nats-server's message scheduler."""

import json
from datetime import UTC, datetime, timedelta

from common.events import STREAM_NAME
from expiration.schedule import at_second, cancel_expiration, schedule_expiration
from testkit.streams import stream_messages
from testkit.waiting import eventually


def test_the_schedule_is_to_the_second_rounded_up_never_early():
    assert at_second(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert at_second(datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=UTC)) == "2026-01-02T03:04:06Z"
    assert at_second(datetime(2026, 1, 2, 3, 4, 59, 999999, tzinfo=UTC)) == "2026-01-02T03:05:00Z"


async def completions(js) -> list[dict]:
    return [json.loads(m.data) for m in await stream_messages(js, "expiration.complete")]


async def test_a_scheduled_expiration_fires_once_at_its_time(nats_manager):
    js = nats_manager.jetstream
    due = datetime.now(UTC) + timedelta(seconds=2)
    assert await schedule_expiration(js, "o1", due, timeout=2) == "scheduled"
    # a redelivered order.created schedules nothing more (same Nats-Msg-Id)
    assert await schedule_expiration(js, "o1", due, timeout=2) == "scheduled"
    assert await completions(js) == []
    await eventually(lambda: _fired(js, 1))
    assert datetime.now(UTC) >= due
    [fired] = await stream_messages(js, "expiration.complete")
    assert fired.headers["Nats-Scheduler"] == "expiration.schedule.o1"
    assert await completions(js) == [{"orderId": "o1"}]


async def test_a_past_expiry_is_published_at_once(nats_manager):
    js = nats_manager.jetstream
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert await schedule_expiration(js, "o2", past, timeout=2) == "published"
    [message] = await stream_messages(js, "expiration.complete")
    assert message.headers["Nats-Msg-Id"] == "expiration.complete:o2"


async def test_a_cancelled_schedule_never_fires(nats_manager):
    js = nats_manager.jetstream
    await schedule_expiration(js, "o3", datetime.now(UTC) + timedelta(seconds=2), timeout=2)
    await schedule_expiration(js, "o4", datetime.now(UTC) + timedelta(seconds=2), timeout=2)
    await cancel_expiration(js, "o3")
    await eventually(lambda: _fired(js, 1))
    assert await completions(js) == [{"orderId": "o4"}]


async def test_the_stream_allows_schedules(nats_manager):
    info = await nats_manager.jetstream.stream_info(STREAM_NAME)
    assert info.config.allow_msg_schedules is True


async def _fired(js, count: int) -> bool:
    return len(await stream_messages(js, "expiration.complete")) >= count
