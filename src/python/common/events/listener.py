"""Listeners: a durable JetStream pull consumer per service and subject, explicit acks.

- success → ack;
- `EventAhead` (an earlier version of the aggregate has not been applied yet) → nak
  with a short, growing delay, so the message comes back after its predecessor (a
  consumer of the other subject may lag for minutes: it keeps waiting, up to the
  consumer's `max_deliver`);
- handler error or timeout → nak with a growing delay (redelivered), until
  `max_failures` deliveries; still failing then (a poison message) → term, logged
  with its ids; a message the server stops redelivering by itself (`max_deliver`
  reached without an ack: e.g. it crashes its handler's process) is logged the same
  way, from JetStream's advisory;
- payload that fails validation → term at once, logged (retrying cannot fix it).

While a batch is handled, its messages are kept alive with in-progress acks, so a slow
handler never has its message redelivered to another replica mid-handling. JetStream
delivers at least once: a message whose ack was lost (the connection dropped, or the
consumer's leader died on a NATS cluster before the ack was replicated) comes again.
The listener remembers the stream sequences it handled recently and acks such a
redelivery without running the handler again; a redelivery that reaches another
replica is handled again, so handlers stay idempotent (versions, unique ids). An ack, nak
or term that fails is logged and the loop goes on (the message is then redelivered).
Replicas of a service share the durable consumer, so each message is handled by one of
them (what the original's queue group did). Each delivery is handled in a `process <subject>`
span continuing the publisher's trace (`common.observability.tracing.consumer_span`), its outcome on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import ServiceUnavailableError
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import ValidationError

from common.errors import ConflictError
from common.events.contracts import STREAM_NAME, Event, Subject
from common.events.versions import read_event
from common.observability import logs, tracing
from common.tasks import Loop

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


class StreamClient(Protocol):
    """What a listener needs of its client (`common.nats_client.NatsClientManager`, or
    the recording fake): the events library stays below the client that uses it."""

    @property
    def jetstream(self) -> JetStreamContext: ...

    @property
    def client(self) -> Client: ...

    async def ensure_stream(self) -> Any: ...


class EventAhead(Exception):
    """The event is ahead of what is stored (version N arrived before N-1): retry later."""


def durable_name(service: str, subject: Subject) -> str:
    """JetStream durable names cannot contain dots and are bound to one subject."""
    return f"{service}-{subject.value.replace('.', '-')}"


class Listener(ABC, Generic[E]):
    """Subclass per subject, like the original's, and implement `on_message`:

    class TicketCreatedListener(Listener[TicketCreatedEvent]):
        event = TicketCreatedEvent

        async def on_message(self, data: TicketCreatedEvent, msg: Msg) -> None: ...

    A service's listeners subclass `common.context.StreamListener` or `DataListener`,
    which hand them the service's context (its database, outbox, settings).
    """

    event: ClassVar[type[Event]]
    ack_wait: ClassVar[float] = 30.0  # seconds without an ack or heartbeat before redelivery
    handler_timeout: ClassVar[float] = 60.0  # a handler still running then counts as failed
    max_failures: ClassVar[int] = 10  # failed deliveries before a message is poison
    max_deliver: ClassVar[int] = 200  # the server's hard stop (≈ 6 minutes of waiting)
    # delays double per delivery, from the first up to the most
    retry_delay: ClassVar[float] = 1.0  # a failed message
    retry_max_delay: ClassVar[float] = 10.0
    ahead_delay: ClassVar[float] = 0.1  # an out-of-order one: soon, its predecessor is near
    ahead_max_delay: ClassVar[float] = 2.0
    # One message per fetch: nats-py's multi-message fetch can leave its long-poll pull
    # request open on the server, which then holds the next message until it expires
    # (measured: the second of two events 40 ms apart handled 43 ms late in a probe,
    # 270-900 ms in the order → reserved path; one at a time: 1-3 ms). A fetch is one
    # loopback round trip, small next to a handler's database writes.
    batch_size: ClassVar[int] = 1
    poll_seconds: ClassVar[float] = 1.0
    remember_handled: ClassVar[int] = 10_000  # messages handled (≈ 2 MB)

    def __init__(self, nats: StreamClient, service: str) -> None:
        self.nats = nats
        self.js: JetStreamContext = nats.jetstream
        self.service = service
        self.subject = self.event.subject
        self.durable = durable_name(service, self.subject)
        self._sub: JetStreamContext.PullSubscription | None = None
        self._advisories: Subscription | None = None
        self._loop = Loop(f"listener:{self.durable}", self._step, pause=self.poll_seconds)
        self._handled: OrderedDict[tuple[int, str | int], None] = OrderedDict()
        # what became of each delivery (ok, retried, ahead, poisoned, invalid,
        # redelivery_skipped), and how many were not the first: for /metrics
        self.outcomes: Counter[str] = Counter()
        self.redelivered = 0

    @abstractmethod
    async def on_message(self, data: E, msg: Msg) -> None:
        """Handle one event; raise to have it redelivered (`EventAhead`: soon)."""

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
        self._sub = await self._pull_subscribe()
        self._advisories = await self.nats.client.subscribe(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM_NAME}.{self.durable}",
            queue=self.durable,  # one replica logs it
            cb=self._on_max_deliveries,
        )
        self._loop.start()

    async def _pull_subscribe(self) -> JetStreamContext.PullSubscription:
        """Create (or bind to) the durable consumer, with this listener's config."""
        return await self.js.pull_subscribe(
            self.subject.value,
            durable=self.durable,
            stream=STREAM_NAME,
            config=self.consumer_config(),
        )

    async def stop(self) -> None:
        """Stop fetching and drop this replica's inboxes (the durable consumer stays, with
        what is unacked, for the other replicas and the next start)."""
        await self._loop.stop()
        for subscription in (self._sub, self._advisories):
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        self._sub = self._advisories = None

    @property
    def running(self) -> bool:
        return self._loop.running

    async def _step(self) -> None:
        assert self._sub is not None
        try:
            messages = await self._sub.fetch(self.batch_size, timeout=self.poll_seconds)
        except (NatsTimeoutError, TimeoutError):
            return  # nothing new
        except ConnectionClosedError:
            log.info("%s: NATS connection closed, listener stops", self.durable)
            self._loop.stopping = True
            return
        except ServiceUnavailableError:  # nothing answers for the consumer: is it gone?
            await self._recover_consumer()
            return
        except NatsError as exc:  # e.g. disconnected: the client reconnects by itself
            log.warning("%s: fetch failed (%r), retrying", self.durable, exc)
            await asyncio.sleep(self.poll_seconds)
            return
        pending = list(messages)
        heartbeat = asyncio.create_task(self._keep_alive(pending))
        try:
            for msg in messages:
                # every log line written while handling it names the event, and the
                # handling continues the trace that published it
                token = logs.handled_event.set((self.subject.value, _msg_id(msg)))
                try:
                    with tracing.consumer_span(
                        self.subject.value, _msg_id(msg), msg.headers, self.durable
                    ):
                        await self.handle(msg)
                finally:
                    logs.handled_event.reset(token)
                pending.remove(msg)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _recover_consumer(self) -> None:
        """The stream (and so this durable consumer) was deleted: make the stream again
        per the contract and the consumer."""
        with contextlib.suppress(NatsError, TimeoutError):
            await self.js.consumer_info(STREAM_NAME, self.durable)
            await asyncio.sleep(self.poll_seconds)  # it exists: a transient fault
            return
        log.error("%s: the consumer (or the stream) is gone; creating it again", self.durable)
        try:
            await self.nats.ensure_stream()
            old, self._sub = self._sub, await self._pull_subscribe()
            self._handled.clear()  # a new stream numbers its messages from 1 again
        except (NatsError, TimeoutError) as exc:
            log.warning("%s: could not create it yet (%r), retrying", self.durable, exc)
            await asyncio.sleep(self.poll_seconds)
            return
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()

    async def _keep_alive(self, pending: list[Msg]) -> None:
        """Tell the server the fetched messages are still being worked on."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for msg in list(pending):
                await self._settle(msg, "in_progress")

    async def handle(self, msg: Msg) -> None:
        meta = msg.metadata
        where = f"{self.durable} stream_seq={meta.sequence.stream} msg_id={_msg_id(msg)}"
        if meta.num_delivered > 1:
            self.redelivered += 1
        if _identity(msg) in self._handled:
            log.info("%s: handled already (its ack was lost): acked again", where)
            self._outcome("redelivery_skipped")
            await self._settle(msg, "ack")
            return
        try:
            data = read_event(self.event, msg.data, msg.headers)  # as its newest version
        except (ValidationError, ValueError) as exc:
            problem = exc.errors(include_url=False) if isinstance(exc, ValidationError) else exc
            log.error("%s: invalid payload, terminated: %s", where, problem)
            self._outcome("invalid", failed=True)
            await self._settle(msg, "term")
            return
        delivery = meta.num_delivered
        try:
            async with asyncio.timeout(self.handler_timeout):
                await self.on_message(data, msg)  # type: ignore[arg-type]
        except EventAhead:
            if delivery >= self.max_deliver:
                log.error(
                    "%s: poison message, still ahead of its predecessor after %d deliveries, "
                    "terminated",
                    where,
                    meta.num_delivered,
                )
                self._outcome("poisoned", failed=True)
                await self._settle(msg, "term")
            else:
                log.info("%s: ahead of its predecessor, retried shortly", where)
                self._outcome("ahead")
                await self._settle(
                    msg, "nak", delay=_backoff(self.ahead_delay, self.ahead_max_delay, delivery)
                )
            return
        except Exception as exc:
            if delivery >= min(self.max_failures, self.max_deliver):
                log.exception(
                    "%s: poison message, failed %d deliveries, terminated",
                    where,
                    meta.num_delivered,
                )
                self._outcome("poisoned", failed=True)
                await self._settle(msg, "term")
                return
            if isinstance(exc, ConflictError):
                # A concurrent change won a version race (pay ∥ cancel): expected, and
                # the retry decides again on the new state. One line, no traceback.
                log.info("%s: lost a version race (%s), will retry", where, exc.message)
            else:
                log.warning(
                    "%s: handler failed on delivery %d/%d, will retry",
                    where,
                    delivery,
                    self.max_failures,
                    exc_info=True,
                )
            self._outcome("retried", failed=True)
            await self._settle(
                msg, "nak", delay=_backoff(self.retry_delay, self.retry_max_delay, delivery)
            )
            return
        self._remember(msg)
        self._outcome("ok")
        await self._settle(msg, "ack")

    def _outcome(self, outcome: str, *, failed: bool = False) -> None:
        """Count what became of a delivery (for /metrics) and note it on its span."""
        self.outcomes[outcome] += 1
        span = trace.get_current_span()
        span.set_attribute("ticketing.outcome", outcome)
        if failed:
            span.set_status(StatusCode.ERROR, outcome)

    def _remember(self, msg: Msg) -> None:
        self._handled[_identity(msg)] = None
        if len(self._handled) > self.remember_handled:
            self._handled.popitem(last=False)

    async def _settle(self, msg: Msg, action: str, **kwargs: float) -> None:
        """ack / nak / term / in_progress; a failure is logged, never fatal to the loop
        (the server redelivers a message whose ack did not arrive)."""
        try:
            await getattr(msg, action)(**kwargs)
        except Exception as exc:
            log.warning("%s: %s failed (%r); it will be redelivered", self.durable, action, exc)

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        try:
            info = json.loads(advisory.data)
            seq = int(info["stream_seq"])
            deliveries = info.get("deliveries", self.max_deliver)
        except (ValueError, KeyError, TypeError):
            log.error("%s: unreadable max-deliveries advisory: %r", self.durable, advisory.data)
            return
        msg_id = "-"
        with contextlib.suppress(Exception):
            stored = await self.js.get_msg(STREAM_NAME, seq)
            msg_id = (stored.headers or {}).get("Nats-Msg-Id", "-")
        self.outcomes["poisoned"] += 1
        log.error(
            "%s stream_seq=%d msg_id=%s: poison message, ran out of deliveries (%s), "
            "no longer redelivered",
            self.durable,
            seq,
            msg_id,
            deliveries,
        )


def _backoff(first: float, most: float, delivery: int) -> float:
    return min(first * 2 ** (delivery - 1), most)


def _identity(msg: Msg) -> tuple[int, str | int]:
    """A stored message: its stream sequence, and its Nats-Msg-Id (or payload) in case
    the stream was deleted and made again, which starts the sequences over."""
    msg_id = (msg.headers or {}).get("Nats-Msg-Id")
    return msg.metadata.sequence.stream, msg_id or hash(msg.data)


def _msg_id(msg: Msg) -> str:
    return (msg.headers or {}).get("Nats-Msg-Id", "-")
