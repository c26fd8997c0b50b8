"""The compatibility gate: the committed schemas are the models', every version reads
every other, and a breaking change is refused naming the field and the rule."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from common.events import registry
from common.events.contracts import (
    EVENT_MODELS,
    Event,
    OrderCancelledEvent,
    OrderTicketRef,
    Subject,
)


def test_the_committed_schemas_are_the_models_and_every_version_reads_every_other():
    assert registry.problems() == []
    assert registry.versions("order.cancelled") == [1, 2]  # a real second version


class Renamed(Event):  # `ticket` called `ticketRef`
    subject = Subject.ORDER_CANCELLED
    id: str
    version: int = Field(ge=0)
    ticketRef: OrderTicketRef


class Retyped(Event):
    subject = Subject.ORDER_CANCELLED
    id: str
    version: str
    ticket: OrderTicketRef


class NewRequired(Event):
    subject = Subject.ORDER_CANCELLED
    id: str
    version: int = Field(ge=0)
    ticket: OrderTicketRef
    reason: str


class NestedRemoved(Event):
    subject = Subject.ORDER_CANCELLED
    id: str
    version: int = Field(ge=0)
    ticket: dict[str, str]


def v1() -> registry.Schema:
    schema = registry.committed("order.cancelled", 1)
    assert schema is not None
    return schema


@pytest.mark.parametrize(
    ("model", "said"),
    [
        (
            Renamed,
            [
                "`ticket` was removed (or renamed): readers of the older version need it",
                "`ticketRef` is new and required: messages of the older version lack it (give it a default)",
            ],
        ),
        (Retyped, ["`version` changed type from integer to string"]),
        (
            NewRequired,
            [
                "`reason` is new and required: messages of the older version lack it (give it a default)"
            ],
        ),
        (
            NestedRemoved,
            ["`ticket.id` was removed (or renamed): readers of the older version need it"],
        ),
        (OrderCancelledEvent, []),  # version 2: an optional field added
    ],
)
def test_a_breaking_change_is_refused_naming_the_field_and_the_rule(model, said):
    assert registry.incompatibilities(v1(), model.model_json_schema()) == said


def test_a_model_changed_without_a_new_version_is_refused_with_what_to_do(monkeypatch):
    class Changed(NewRequired):
        schema_version = 2
        upcasters = OrderCancelledEvent.upcasters

    monkeypatch.setitem(EVENT_MODELS, Subject.ORDER_CANCELLED, Changed)
    [problem] = registry.problems()
    assert problem.startswith(
        "order.cancelled: the model no longer matches its committed version 2"
    )
    assert "`reason` changed type from null | string to string" in problem
    assert "make it version 3 (schema_version = 3, an upcaster 2 → 3)" in problem


def test_a_new_version_needs_its_upcaster_and_its_schema(monkeypatch):
    class Third(OrderCancelledEvent):
        schema_version = 3
        venue: str | None = None

    monkeypatch.setitem(EVENT_MODELS, Subject.ORDER_CANCELLED, Third)
    found = registry.problems()
    assert any("holds versions [1, 2] (each of 1..3 is committed" in p for p in found), found
    assert any("no upcaster from version(s) [2]" in p for p in found), found


def test_write_commits_a_new_version_and_never_rewrites_a_released_one(tmp_path, monkeypatch):
    for subject in EVENT_MODELS:  # the repository's schemas, copied
        for n in registry.versions(subject.value):
            target = tmp_path / subject.value / f"{n}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(registry.path_of(subject.value, n).read_text())
    assert registry.write(tmp_path) == []  # all up to date

    class Changed(NewRequired):
        schema_version = 2

    monkeypatch.setitem(EVENT_MODELS, Subject.ORDER_CANCELLED, Changed)
    [refused] = registry.write(tmp_path)
    assert refused.startswith("refused: order.cancelled/2.json is committed with other fields")
    assert (
        json.loads((tmp_path / "order.cancelled/2.json").read_text())["$id"] == "order.cancelled/2"
    )
    assert "reason" not in json.loads((tmp_path / "order.cancelled/2.json").read_text())["required"]

    class Third(OrderCancelledEvent):
        schema_version = 3

    monkeypatch.setitem(EVENT_MODELS, Subject.ORDER_CANCELLED, Third)
    assert registry.write(tmp_path) == ["wrote order.cancelled/3.json"]
