"""Publishers: one subject each, validated payload, dedupe id, awaited JetStream ack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from nats.errors import Error as NatsError
from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from ticketing_common.events.contracts import EVENT_MODELS, Event, Subject, encode_event, message_id

E = TypeVar("E", bound=Event)

DEFAULT_PUBLISH_TIMEOUT = 5.0


class PublishError(Exception):
    """The event was not acknowledged by JetStream (it may or may not be stored)."""

    def __init__(self, subject: str, msg_id: str, cause: BaseException) -> None:
        self.subject = subject
        self.msg_id = msg_id
        reason = str(cause) or type(cause).__name__
        super().__init__(f"publishing {subject} (Nats-Msg-Id {msg_id}) failed: {reason}")


async def publish_raw(
    js: JetStreamContext, subject: str, data: bytes, msg_id: str, timeout: float
) -> PubAck:
    """Publish bytes with a dedupe id and wait for JetStream's ack (or raise PublishError)."""
    try:
        return await js.publish(subject, data, timeout=timeout, headers={"Nats-Msg-Id": msg_id})
    except (NatsError, TimeoutError, OSError) as exc:
        raise PublishError(subject, msg_id, exc) from exc


class Publisher(Generic[E]):
    """Subclass with one line per subject, like the seed:

    class TicketCreatedPublisher(Publisher[TicketCreatedEvent]):
        subject = Subject.TICKET_CREATED
    """

    subject: ClassVar[Subject]

    def __init__(self, js: JetStreamContext, timeout: float = DEFAULT_PUBLISH_TIMEOUT) -> None:
        self.js = js
        self.timeout = timeout

    @classmethod
    def model(cls) -> type[Event]:
        return EVENT_MODELS[cls.subject]

    @classmethod
    def build(cls, data: E | Mapping[str, Any]) -> Event:
        """Validate `data` against this subject's payload model."""
        model = cls.model()
        if isinstance(data, model):
            return data
        if isinstance(data, Event):
            data = data.model_dump()
        return model.model_validate(data)

    async def publish(self, data: E | Mapping[str, Any]) -> PubAck:
        event = self.build(data)
        return await publish_raw(
            self.js,
            self.subject.value,
            encode_event(event),
            message_id(self.subject, event),
            self.timeout,
        )
