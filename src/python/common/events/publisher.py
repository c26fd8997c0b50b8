"""Publishing: a validated event, its dedupe id, and JetStream's ack awaited (bounded).

Services do not call this directly for their own data: they record events through the
outbox (`common.outbox`), atomically with the change. Direct publishing is for events
that describe no stored document (e.g. a scheduled `expiration.complete`).
"""

from __future__ import annotations

from nats.errors import Error as NatsError
from nats.js.api import PubAck
from nats.js.client import JetStreamContext
from nats.js.errors import NoStreamResponseError

from common.events.contracts import Event
from common.events.versions import schema_header
from common.observability import tracing

DEFAULT_PUBLISH_TIMEOUT = 5.0
"""Seconds to wait for JetStream's ack; the `PUBLISH_TIMEOUT` setting's default."""


class PublishError(Exception):
    """The event was not acknowledged by JetStream (it may or may not be stored)."""

    def __init__(self, subject: str, msg_id: str, cause: BaseException) -> None:
        self.subject = subject
        self.msg_id = msg_id
        # no stream takes the subject (it was deleted): answered at once, not a timeout
        self.stream_missing = isinstance(cause, NoStreamResponseError)
        reason = str(cause) or type(cause).__name__
        super().__init__(f"publishing {subject} (Nats-Msg-Id {msg_id}) failed: {reason}")


async def publish_raw(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    msg_id: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    trace: dict[str, str] | None = None,
) -> PubAck:
    """Publish bytes with a dedupe id and wait for JetStream's ack (or raise PublishError).

    In a `publish <subject>` span whose context the message carries (`traceparent`):
    the child of `trace` (the context the outbox stored with the event) or else of the
    current span."""
    with tracing.producer_span(subject, msg_id, parent=trace) as trace_headers:
        all_headers = {**(headers or {}), **trace_headers, "Nats-Msg-Id": msg_id}
        try:
            return await js.publish(subject, data, timeout=timeout, headers=all_headers)
        except (NatsError, TimeoutError, OSError) as exc:
            raise PublishError(subject, msg_id, exc) from exc


async def publish(
    js: JetStreamContext, event: Event, timeout: float = DEFAULT_PUBLISH_TIMEOUT
) -> PubAck:
    """Publish `event` on its own subject, deduplicated by `event.message_id()`, saying
    its payload's version."""
    subject = event.subject.value
    headers = schema_header(subject, event.schema_version)
    return await publish_raw(js, subject, event.encode(), event.message_id(), timeout, headers)
