"""Reading any version of a payload as its model's newest (unit: no server; the real
stream's messages of both versions: corpus_test.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.events import (
    OrderCancelledEvent,
    TicketCreatedEvent,
    read_event,
    read_payload,
    schema_header,
)
from common.events.versions import version_of

V1 = b'{"id": "o1", "version": 2, "ticket": {"id": "t1"}}'
V2 = b'{"id": "o1", "version": 2, "ticket": {"id": "t1"}, "reason": "The order expired before it was paid"}'


def test_a_version_1_message_is_upcast_to_the_newest():
    for headers in (None, {}, schema_header("order.cancelled", 1)):  # no header: version 1
        event = read_event(OrderCancelledEvent, V1, headers)
        assert (event.id, event.ticket.id, event.reason) == ("o1", "t1", None)


def test_the_current_version_is_read_as_it_is():
    event = read_event(OrderCancelledEvent, V2, schema_header("order.cancelled", 2))
    assert event.reason == "The order expired before it was paid"


def test_a_newer_version_than_this_code_knows_is_read_ignoring_its_additions():
    """A newer replica's message during a rolling upgrade: it only adds optional fields."""
    newer = V2[:-1] + b', "venue": "Hall"}'
    event = read_event(OrderCancelledEvent, newer, schema_header("order.cancelled", 3))
    assert event.reason == "The order expired before it was paid"


@pytest.mark.parametrize(
    ("header", "version"),
    [
        ("order.cancelled/2", 2),
        ("order.cancelled/0", 1),
        ("order.cancelled/x", 1),
        ("ticket.created/2", 1),  # another subject's: not this message's version
        ("", 1),
    ],
)
def test_the_version_a_header_names(header, version):
    assert version_of("order.cancelled", {"Ticketing-Schema": header}) == version


def test_what_is_not_a_payload_is_refused_not_upcast():
    with pytest.raises(ValidationError):
        read_event(OrderCancelledEvent, b"[1, 2]", None)
    with pytest.raises(ValueError):
        read_event(OrderCancelledEvent, b"not json", None)
    with pytest.raises(ValidationError):
        read_event(TicketCreatedEvent, b'{"id": "t"}', None)


def test_the_whole_stream_reader_upcasts_too():
    assert read_payload("order.cancelled", V1, None)["reason"] is None
    assert read_payload("order.cancelled", V2, None)["reason"].startswith("The order")
    assert read_payload("some.other", b'{"a": 1}', None) == {"a": 1}
    with pytest.raises(ValueError):
        read_payload("order.cancelled", b"[]", None)
