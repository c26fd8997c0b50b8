"""The event contract as an AsyncAPI 3 document (`docs/asyncapi.yaml`), made from the code:
every subject a channel, each version of its payload a message (its schema the committed
JSON Schema, `common/events/schemas/`), the headers every message carries, and which
service sends and which receives each (the receivers from the services' listeners).

    ./pants run src/python/contract:asyncapi -- --write   # after changing an event

`asyncapi_test.py` fails when the document is not what the code makes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from common.events import EVENT_MODELS, SCHEMA_HEADER, Subject
from common.events.registry import versions
from expiration.listeners import LISTENERS as EXPIRATION
from orders.listeners import LISTENERS as ORDERS
from payments.listeners import LISTENERS as PAYMENTS
from tickets.listeners import LISTENERS as TICKETS

DOCUMENT = Path("docs/asyncapi.yaml")  # from the build root
SCHEMAS = "../src/python/common/events/schemas"  # from the document
# Who sends each subject: the service its first word names (one publisher a subject).
PUBLISHERS = {"ticket": "tickets", "order": "orders", "expiration": "expiration",
              "payment": "payments", "session": "auth"}  # fmt: skip
LISTENING = {"tickets": TICKETS, "orders": ORDERS, "expiration": EXPIRATION, "payments": PAYMENTS}
# session.revoked is read by every service that checks sessions (common.revocations)
CHECKS_SESSIONS = ("auth", "tickets", "orders", "payments")


def publisher(subject: Subject) -> str:
    return PUBLISHERS[subject.value.split(".")[0]]


def receivers(subject: Subject) -> list[str]:
    if subject is Subject.SESSION_REVOKED:
        return list(CHECKS_SESSIONS)
    return [
        name
        for name, listeners in LISTENING.items()
        if any(listener.event.subject is subject for listener in listeners)
    ]


def _message(subject: Subject, version: int) -> dict[str, Any]:
    model = EVENT_MODELS[subject]
    current = version == model.schema_version
    return {
        "name": subject.value,
        "title": f"{subject.value} version {version}" + ("" if current else " (still read)"),
        "summary": (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ") or None,
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/headers"},
        "payload": {
            "schemaFormat": "application/schema+json;version=draft-2020-12",
            "schema": {"$ref": f"{SCHEMAS}/{subject.value}/{version}.json"},
        },
    }


def document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for subject, model in EVENT_MODELS.items():
        ids = []
        for version in versions(subject.value):
            key = f"{subject.value}.v{version}"
            messages[key] = {k: v for k, v in _message(subject, version).items() if v is not None}
            ids.append(key)
        channel = {"$ref": f"#/channels/{subject.value}"}
        channels[subject.value] = {
            "address": subject.value,
            "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in ids},
        }
        sent = f"#/channels/{subject.value}/messages/{subject.value}.v{model.schema_version}"
        operations[f"{publisher(subject)}.sends.{subject.value}"] = {
            "action": "send",
            "channel": channel,
            "messages": [{"$ref": sent}],  # what this version of the code publishes
            "tags": [{"name": publisher(subject)}],
        }
        for service in receivers(subject):
            operations[f"{service}.receives.{subject.value}"] = {
                "action": "receive",
                "channel": channel,
                "tags": [{"name": service}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Ticketing events",
            "version": "1.0.0",
            "description": (
                "Made from the code by src/python/contract/asyncapi.py; do not edit. Every "
                "event is a JetStream message on the TICKETING stream (kept a week), "
                "deduplicated by its Nats-Msg-Id. Each subject's payload has versions: a "
                "reader reads every version the stream may hold (a new version only adds "
                "optional fields; older ones are upcast). docs/development.md, 'Changing "
                "an event'."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "nats-srv:4222",
                "protocol": "nats",
                "description": "NATS JetStream (infra/k8s/nats-depl.yaml); locally ./run's own",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {
                "headers": {
                    "type": "object",
                    "required": ["Nats-Msg-Id"],
                    "properties": {
                        "Nats-Msg-Id": {
                            "type": "string",
                            "description": "<subject>:<what makes it one> (e.g. order.cancelled:<order id>:<version>): JetStream drops a repeat within 120 s",
                        },
                        SCHEMA_HEADER: {
                            "type": "string",
                            "pattern": r"^[a-z]+\.[a-z]+/[1-9][0-9]*$",
                            "description": "<subject>/<version> of the payload; absent: version 1 (published before versions)",
                        },
                        "traceparent": {
                            "type": "string",
                            "description": "W3C trace context of the change that published it",
                        },
                    },
                }
            },
        },
    }


def text() -> str:
    return yaml.safe_dump(document(), sort_keys=False, width=100, allow_unicode=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOCUMENT}")
    args = parser.parse_args()
    if args.write:
        DOCUMENT.write_text(text())
        print(f"wrote {DOCUMENT}")
        return
    sys.stdout.write(text())


if __name__ == "__main__":
    main()
