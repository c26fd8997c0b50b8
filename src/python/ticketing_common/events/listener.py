"""Listeners: a durable JetStream pull consumer per service and subject, explicit acks.

- success → ack;
- handler error → nak with a delay (redelivered), until `max_deliver` deliveries;
- still failing on the last delivery (a poison message) → term, logged with its ids;
- payload that fails validation → term at once, logged (retrying cannot fix it).

Replicas of a service share the durable consumer, so each message is handled by one
of them (what the seed's queue group did).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from pydantic import ValidationError

from ticketing_common.events.contracts import EVENT_MODELS, STREAM_NAME, Event, Subject

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


def durable_name(service: str, subject: Subject) -> str:
    """JetStream durable names cannot contain dots and are bound to one subject."""
    return f"{service}-{subject.value.replace('.', '-')}"


class Listener(ABC, Generic[E]):
    subject: ClassVar[Subject]
    ack_wait: ClassVar[float] = 30.0  # seconds a handler may take before redelivery
    max_deliver: ClassVar[int] = 5
    retry_delay: ClassVar[float] = 1.0  # seconds before a failed message is redelivered
    batch_size: ClassVar[int] = 16
    poll_seconds: ClassVar[float] = 1.0

    def __init__(self, js: JetStreamContext, service: str) -> None:
        self.js = js
        self.service = service
        self.durable = durable_name(service, self.subject)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @abstractmethod
    async def on_message(self, data: E, msg: Msg) -> None:
        """Handle one event; raise to have it redelivered."""

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            filter_subject=self.subject.value,
        )

    async def start(self) -> None:
        """Create (or bind to) the durable consumer and start handling messages."""
        sub = await self.js.pull_subscribe(
            self.subject.value,
            durable=self.durable,
            stream=STREAM_NAME,
            config=self.consumer_config(),
        )
        self._task = asyncio.create_task(self._run(sub), name=f"listener:{self.durable}")

    async def stop(self) -> None:
        self._stopping = True  # a flag as well: Python 3.11 can swallow a cancel in a timeout
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping:
            try:
                messages = await sub.fetch(self.batch_size, timeout=self.poll_seconds)
            except (NatsTimeoutError, TimeoutError):
                continue  # nothing new
            except ConnectionClosedError:
                log.info("%s: NATS connection closed, listener stops", self.durable)
                return
            except NatsError as exc:  # e.g. disconnected: the client reconnects by itself
                log.warning("%s: fetch failed (%r), retrying", self.durable, exc)
                await asyncio.sleep(self.poll_seconds)
                continue
            for msg in messages:
                await self.handle(msg)

    async def handle(self, msg: Msg) -> None:
        meta = msg.metadata
        where = f"{self.durable} stream_seq={meta.sequence.stream} msg_id={_msg_id(msg)}"
        try:
            data = EVENT_MODELS[self.subject].model_validate_json(msg.data)
        except ValidationError as exc:
            log.error("%s: invalid payload, terminated: %s", where, exc.errors(include_url=False))
            await msg.term()
            return
        try:
            await self.on_message(data, msg)  # type: ignore[arg-type]
        except Exception:
            if meta.num_delivered >= self.max_deliver:
                log.exception(
                    "%s: poison message, failed %d deliveries, terminated",
                    where,
                    meta.num_delivered,
                )
                await msg.term()
            else:
                log.warning(
                    "%s: handler failed on delivery %d/%d, will retry",
                    where,
                    meta.num_delivered,
                    self.max_deliver,
                    exc_info=True,
                )
                await msg.nak(delay=self.retry_delay)
            return
        await msg.ack()


def _msg_id(msg: Msg) -> str:
    return (msg.headers or {}).get("Nats-Msg-Id", "-")
