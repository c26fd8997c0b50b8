"""Which version of its payload a message carries, and reading any version as the newest.

Every message carries `Ticketing-Schema: <subject>/<n>` (`schema_header`): the version
of its model it was written with. A listener reads it as its model's newest version:
an older payload goes through the model's upcasters, n → n+1, one step at a time; a
message without the header was published before versions existed (version 1); a newer
one than this code knows (a newer replica during a rolling upgrade) is read as it is —
a new version only adds optional fields, so the fields this code knows are all there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from common.events.contracts import EVENT_MODELS, Event

SCHEMA_HEADER = "Ticketing-Schema"
MODELS_BY_SUBJECT: dict[str, type[Event]] = {s.value: m for s, m in EVENT_MODELS.items()}

E = TypeVar("E", bound=Event)


def schema_header(subject: str, version: int) -> dict[str, str]:
    """`Ticketing-Schema: order.cancelled/2`: a message's subject and payload version."""
    return {SCHEMA_HEADER: f"{subject}/{version}"}


def version_of(subject: str, headers: Mapping[str, str] | None) -> int:
    """The version a message of `subject` says it carries; 1 if it says none (or
    something that is not a version of this subject)."""
    name, _, number = (headers or {}).get(SCHEMA_HEADER, "").rpartition("/")
    return int(number) if name == subject and number.isdigit() and int(number) > 0 else 1


def upcast(model: type[Event], version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """A version-`version` payload of `model`'s subject as its newest version's."""
    for step in range(version, model.schema_version):
        payload = model.upcasters[step](payload)
    return payload


def read_event(model: type[E], data: bytes, headers: Mapping[str, str] | None) -> E:
    """The message's payload as `model`'s newest version. Raises pydantic's
    ValidationError (or ValueError for bytes that are not JSON) if it is not one."""
    version = version_of(model.subject.value, headers)
    if version >= model.schema_version:
        return model.model_validate_json(data)
    payload = json.loads(data)
    if not isinstance(payload, dict):
        return model.model_validate(payload)  # refused, in pydantic's words
    return model.model_validate(upcast(model, version, payload))


def read_payload(subject: str, data: bytes, headers: Mapping[str, str] | None) -> dict[str, Any]:
    """A message's payload as a dict of its subject's newest version (for readers of the
    whole stream, as the auditor: no validation beyond being a JSON object)."""
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise ValueError(f"{subject}: the payload is not a JSON object")
    model = MODELS_BY_SUBJECT.get(subject)
    if model is None:
        return payload
    return upcast(model, version_of(subject, headers), payload)
