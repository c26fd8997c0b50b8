"""Read back what is stored on the TICKETING stream, and whether the outbox has sent
everything it recorded."""

from __future__ import annotations

import json
from typing import Any

from nats.js.api import RawStreamMsg
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from pymongo.asynchronous.database import AsyncDatabase

from common.events.contracts import STREAM_NAME
from common.outbox import unsent_count


async def stream_messages(js: JetStreamContext, subject: str | None = None) -> list[RawStreamMsg]:
    """Every message on the stream (optionally of one subject), in stream order."""
    info = await js.stream_info(STREAM_NAME)
    if info.state.messages == 0:
        return []
    messages = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            message = await js.get_msg(STREAM_NAME, seq)
        except NotFoundError:
            continue  # a gap: purged (e.g. a schedule that fired) or deleted
        if subject is None or message.subject == subject:
            messages.append(message)
    return messages


async def stream_payloads(js: JetStreamContext, subject: str | None = None) -> list[dict[str, Any]]:
    return [json.loads(m.data) for m in await stream_messages(js, subject)]


async def outbox_drained(db: AsyncDatabase[Any], *collections: str) -> bool:
    """Every event recorded in these outbox collections was acknowledged by JetStream."""
    return await unsent_count(db, collections) == 0
