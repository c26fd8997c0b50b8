"""Expirations on JetStream's own message scheduler (nats-server >= 2.12).

An order's expiration is one message on `expiration.schedule.<orderId>` with the
headers `Nats-Schedule: @at <time>` and `Nats-Schedule-Target: expiration.complete`:
the server stores it in the stream and, at that second, writes its payload
(`{orderId}`) to `expiration.complete`. Being in the stream, a schedule survives a
restart of every service and of NATS itself; its `Nats-Msg-Id` makes a redelivered
`order.created` schedule once. No Redis, no timers in this process.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from nats.js.client import JetStreamContext

from common.events import (
    STREAM_NAME,
    ExpirationCompleteEvent,
    Subject,
    publish,
    publish_raw,
    schema_header,
)

SCHEDULES = "expiration.schedule"


def schedule_subject(order_id: str) -> str:
    return f"{SCHEDULES}.{order_id}"


def at_second(moment: datetime) -> str:
    """RFC 3339 UTC to the second, rounded UP: an order never expires early."""
    utc = moment.astimezone(UTC)
    whole = utc.replace(microsecond=0) + timedelta(seconds=math.ceil(utc.microsecond / 1e6))
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


async def schedule_expiration(
    js: JetStreamContext, order_id: str, expires_at: datetime, *, timeout: float
) -> str:
    """Have `expiration.complete {orderId}` published at `expires_at` (at once if that
    is past). Returns "scheduled" or "published"."""
    event = ExpirationCompleteEvent(orderId=order_id)
    if expires_at <= datetime.now(UTC):
        await publish(js, event, timeout)
        return "published"
    await publish_raw(
        js,
        schedule_subject(order_id),
        event.encode(),
        f"{SCHEDULES}:{order_id}",
        timeout,
        headers={
            "Nats-Schedule": f"@at {at_second(expires_at)}",
            "Nats-Schedule-Target": Subject.EXPIRATION_COMPLETE.value,
            **schema_header(Subject.EXPIRATION_COMPLETE.value, event.schema_version),
        },
    )
    return "scheduled"


async def cancel_expiration(js: JetStreamContext, order_id: str) -> None:
    """Drop an order's schedule (it was cancelled or paid): no needless event fires.
    Orders is correct either way; this only saves the work."""
    await js.purge_stream(STREAM_NAME, subject=schedule_subject(order_id))
