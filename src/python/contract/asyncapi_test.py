"""docs/asyncapi.yaml is what the code makes, and what it says is true: every subject
and version, the files its schemas name, who sends and who receives each."""

from __future__ import annotations

from pathlib import Path

import yaml

from common.events import EVENT_MODELS
from common.events.registry import versions
from contract.asyncapi import DOCUMENT, document, publisher, text

ROOT = Path.cwd()  # the build root (Pants runs tests there, with the files they depend on)


def test_the_document_is_what_the_code_makes():
    assert (
        DOCUMENT.read_text() == text()
    ), "docs/asyncapi.yaml is out of date: ./pants run src/python/contract:asyncapi -- --write"


def test_every_subject_and_version_is_in_it_with_a_schema_file_that_exists():
    made = document()
    for subject, model in EVENT_MODELS.items():
        channel = made["channels"][subject.value]
        assert list(channel["messages"]) == [
            f"{subject.value}.v{n}" for n in range(1, model.schema_version + 1)
        ]
        for key in channel["messages"]:
            ref = made["components"]["messages"][key]["payload"]["schema"]["$ref"]
            assert (DOCUMENT.parent / ref).resolve().is_file(), ref
    assert versions("order.cancelled") == [1, 2]


def test_each_subject_is_sent_by_the_service_that_builds_its_events():
    """The named publisher's code makes the event (its model's name is in it)."""
    for subject, model in EVENT_MODELS.items():
        service = publisher(subject)
        code = "".join(p.read_text() for p in (ROOT / "src/python" / service).rglob("*.py"))
        assert model.__name__ in code, (subject, service)


def test_the_receivers_are_the_services_listeners():
    operations = yaml.safe_load(DOCUMENT.read_text())["operations"]
    received = {name for name, op in operations.items() if op["action"] == "receive"}
    assert "payments.receives.order.cancelled" in received
    assert "tickets.receives.order.cancelled" in received
    assert "orders.receives.expiration.complete" in received
    assert "auth.receives.ticket.created" not in received
