"""MongoDB helpers: the client, index creation, ids, the version-conflict error."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from opentelemetry import trace
from opentelemetry.instrumentation.pymongo import CommandTracer
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from common.errors import ConflictError
from common.observability.tracing import exporting, tracer

Document = dict[str, Any]


def create_mongo_client(
    uri: str, app_name: str, *, server_selection_timeout_ms: int = 3000
) -> AsyncMongoClient[Document]:
    """A client that fails a request within seconds when the server is unreachable,
    instead of hanging (those errors render as 503); its commands are spans when this
    process exports spans (else the driver would build an event per command for
    nothing)."""
    return AsyncMongoClient(
        uri,
        appname=app_name,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        connectTimeoutMS=server_selection_timeout_ms,
        tz_aware=True,
        event_listeners=[MongoCommandSpans()] if exporting() else [],
    )


class MongoCommandSpans(CommandTracer):
    """A span per MongoDB command, but only inside a trace: the outbox relay's and the
    health checks' background queries would otherwise each start a trace of their own,
    every second. Given to each client, not registered for the whole process."""

    def __init__(self) -> None:
        super().__init__(tracer)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if trace.get_current_span().get_span_context().is_valid:
            super().started(event)


async def ping(client: AsyncMongoClient[Document], timeout: float = 1.0) -> bool:
    """For /readyz: the server answers a ping within `timeout` seconds."""
    try:
        await client.admin.command("ping", maxTimeMS=int(timeout * 1000))
    except Exception:
        return False
    return True


async def ensure_indexes(
    db: AsyncDatabase[Document], indexes: Mapping[str, Sequence[IndexModel]]
) -> None:
    """Create each collection's indexes (idempotent: existing ones are kept)."""
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(list(models))


_OBJECT_ID = re.compile(r"[0-9a-f]{24}")


def is_object_id(value: object) -> bool:
    """A string id as our services make them (24 hex digits); anything else — another
    type, an operator object like {"$gt": ""} — is not."""
    return isinstance(value, str) and _OBJECT_ID.fullmatch(value) is not None


def parse_object_id(value: str) -> ObjectId | None:
    """The ObjectId for a path id, or None when malformed (routes answer 404)."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


class VersionConflict(ConflictError):
    """The document's version changed since it was read: a concurrent writer won."""
