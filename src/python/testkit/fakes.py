"""A recording stand-in for the NATS client manager — the original's `__mocks__/nats-wrapper`.

Publishing runs for real against it (validation, dedupe id; a message id seen before is
dropped, as JetStream does); it records instead of sending, so unit tests can read back what would have been published. Listeners start
against it and simply never receive anything.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import PubAck
from nats.js.errors import NotFoundError

from common.events.contracts import STREAM_NAME


@dataclass
class PublishedMessage:
    subject: str
    data: dict[str, Any]
    headers: dict[str, str]


class IdleSubscription:
    """A subscription on which nothing ever arrives."""

    async def unsubscribe(self) -> None:
        return None

    async def fetch(self, batch: int = 1, timeout: float | None = None) -> list[Any]:
        await asyncio.sleep(timeout or 1.0)
        raise TimeoutError


@dataclass
class RecordingJetStream:
    published: list[PublishedMessage] = field(default_factory=list)
    fail_with: Exception | None = None  # set to make every publish raise it
    message_ids: set[str] = field(default_factory=set)

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float | None = None,
        stream: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> PubAck:
        if self.fail_with is not None:
            raise self.fail_with
        msg_id = (headers or {}).get("Nats-Msg-Id")
        if msg_id in self.message_ids:  # deduplicated, as JetStream does in its window
            return PubAck(stream=STREAM_NAME, seq=len(self.published), duplicate=True)
        if msg_id is not None:
            self.message_ids.add(msg_id)
        self.published.append(PublishedMessage(subject, json.loads(payload), dict(headers or {})))
        return PubAck(stream=STREAM_NAME, seq=len(self.published))

    async def pull_subscribe(self, *args: Any, **kwargs: Any) -> IdleSubscription:
        return IdleSubscription()

    async def subscribe(self, *args: Any, **kwargs: Any) -> IdleSubscription:
        return IdleSubscription()  # a push subscription: nothing is ever delivered

    async def get_last_msg(self, *args: Any, **kwargs: Any) -> Any:
        raise NotFoundError


class RecordingNats:
    """Same surface as NatsClientManager, minus the network."""

    def __init__(self) -> None:
        self.jetstream = RecordingJetStream()
        self.is_connected = True

    @property
    def published(self) -> list[PublishedMessage]:
        return self.jetstream.published

    @property
    def client(self) -> RecordingJetStream:
        """The core client: its subscriptions never deliver (the stream's fake does it)."""
        return self.jetstream

    def payloads(self, subject: str | None = None) -> list[dict[str, Any]]:
        return [m.data for m in self.published if subject is None or m.subject == subject]

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        self.is_connected = True

    async def ensure_stream(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def check(self, timeout: float = 1.0) -> bool:
        return self.is_connected

    async def drain(self) -> None:
        self.is_connected = False
