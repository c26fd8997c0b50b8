"""A service's shape, stated by the service as the context it runs with — what it holds,
how it starts and stops, what its readiness checks:

- `ServiceContext`: the HTTP plumbing alone (tests of it);
- `StreamContext`: listens and publishes on the stream, keeps no data (expiration);
- `DataContext`: keeps data and talks on the stream (auth, tickets, orders, payments).

A service makes its context first, then its own objects with the parts they need
(payments' settler gets the database and the outbox), then `common.app.create_app`.
Making one does no I/O: the clients connect in `start` (the app's start-up). Routes
reach it through `common.deps`; listeners (`StreamListener`, `DataListener`) are handed
it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from fastapi import FastAPI, Request
from pymongo import IndexModel
from pymongo.errors import PyMongoError

from common.auth import JWT_LEEWAY_SECONDS
from common.events.contracts import Event
from common.events.listener import Listener
from common.limits import LIMIT_INDEXES
from common.mongo import create_mongo_client, ensure_indexes, ping
from common.nats_client import NatsClientManager
from common.outbox import Outbox
from common.revocations import RevokedSessions
from common.settings import EventingSettings, NatsSettings, ProcessSettings

E = TypeVar("E", bound=Event)
T = TypeVar("T")


class Worker(Protocol):
    """A service's own background task (e.g. payments' settler), made with what it
    needs, started after the listeners and stopped before them."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(eq=False, kw_only=True)
class ServiceContext:
    """The HTTP plumbing alone. `own`: the service's own objects its routes need
    (auth's `Passwords`), read back as their type by `own_of`."""

    name: str
    settings: ProcessSettings
    own: object = None
    exit_code: int = 0  # 1 when NATS closed for good: the orchestrator restarts us

    async def start(self) -> None:
        """Connect what the service uses (failing fast) and start its background work."""

    async def stop(self) -> None:
        """In reverse of `start`."""

    async def readiness(self) -> tuple[dict[str, bool], str | None]:
        """Each dependency's check, and why the service is not ready (None: it is)."""
        return {}, None


@dataclass(eq=False, kw_only=True)
class StreamContext(ServiceContext):
    """Listens and publishes: connects NATS (making the stream per the contract), starts
    each listener class as durable consumer `<name>-<subject>`, then the workers. If the
    connection closes for good, the process exits 1 so the orchestrator restarts it."""

    settings: NatsSettings
    listeners: Sequence[type[StreamListener[Any]]] = ()
    workers: Sequence[Worker] = ()
    nats: NatsClientManager = field(default_factory=NatsClientManager)  # tests: a fake
    running: list[StreamListener[Any]] = field(default_factory=list, init=False)
    started: list[Worker] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        _check_settings(self, NatsSettings, "NATS_URL")
        self.nats.stream = self.settings.stream_config()  # this environment's limits

    async def start(self) -> None:
        await self.nats.connect(
            self.settings.nats_url,
            self.settings.nats_client_id,
            on_unexpected_close=self._exit_after_shutdown,
        )
        await self.nats.ensure_stream()
        await self._follow_the_stream()
        for listener_class in self.listeners:
            listener = listener_class(self)
            await listener.start()
            self.running.append(listener)
        for worker in self.workers:
            await worker.start()
            self.started.append(worker)

    async def _follow_the_stream(self) -> None:
        """What a service reads and sends before its listeners start (`DataContext`)."""

    async def stop(self) -> None:
        for worker in reversed(self.started):
            await worker.stop()
        for listener in self.running:
            await listener.stop()
        await self._leave_the_stream()
        await self.nats.drain()  # in-flight publishes

    async def _leave_the_stream(self) -> None:
        """In reverse of `_follow_the_stream`."""

    async def readiness(self) -> tuple[dict[str, bool], str | None]:
        checks = {"nats": await self.nats.check()}
        return checks, None if checks["nats"] else "Not ready: nats unreachable"

    def _exit_after_shutdown(self) -> None:
        """Ask uvicorn for a graceful shutdown, then `run_service` exits 1."""
        self.exit_code = 1
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass(eq=False, kw_only=True)
class DataContext(StreamContext):
    """Keeps data too: its own database (indexes made at start), the sign-outs on the
    stream (it checks sessions), and the outbox for `events_in`, the collections whose
    documents carry their own pending events (routes record through `OutboxDep`)."""

    settings: EventingSettings
    database: str
    indexes: Mapping[str, Sequence[IndexModel]] = field(default_factory=dict)
    events_in: Sequence[str] = ()
    revoked_sessions: RevokedSessions = field(
        default_factory=lambda: RevokedSessions(leeway=JWT_LEEWAY_SECONDS)
    )

    def __post_init__(self) -> None:
        _check_settings(self, EventingSettings, "MONGO_URI, NATS_URL, JWT_KEY")
        super().__post_init__()
        self.mongo = create_mongo_client(self.settings.mongo_uri, self.name)
        self.db = self.mongo[self.database]
        self.outbox = Outbox(
            self.db,
            self.nats,
            self.events_in,
            publish_timeout=self.settings.publish_timeout,
            interval=self.settings.outbox_interval,
            dead_after=self.settings.outbox_dead_after,
        )

    @property
    def jwt_key(self) -> str:
        return self.settings.jwt_key.get_secret_value()

    async def start(self) -> None:
        try:
            await self.mongo.admin.command("ping")
        except PyMongoError as exc:
            raise RuntimeError(f"Could not reach MongoDB (MONGO_URI): {exc}") from exc
        await ensure_indexes(self.db, _merged(self.indexes, LIMIT_INDEXES))
        await super().start()

    async def _follow_the_stream(self) -> None:
        await self.revoked_sessions.follow(self.nats.jetstream)  # those already on it first
        if self.events_in:
            await self.outbox.start()

    async def _leave_the_stream(self) -> None:
        await self.revoked_sessions.stop()
        if self.events_in:
            await self.outbox.stop()  # its last flush

    async def stop(self) -> None:
        await super().stop()
        await self.mongo.close()

    async def readiness(self) -> tuple[dict[str, bool], str | None]:
        checks = {"mongo": await ping(self.mongo), "nats": await self.nats.check()}
        down = [dependency for dependency, ok in checks.items() if not ok]
        if down:
            return checks, f"Not ready: {', '.join(down)} unreachable"
        if self.events_in:
            bound = self.settings.outbox_stuck_seconds
            checks["outbox"] = not self.outbox.stuck(timedelta(seconds=bound))
            if not checks["outbox"]:
                return (
                    checks,
                    f"Not ready: events unsent for over {bound:g} s (is the stream full?)",
                )
        return checks, None


class StreamListener(Listener[E]):
    """A listener of a service, with its context at hand (`self.context`)."""

    def __init__(self, context: StreamContext) -> None:
        super().__init__(context.nats, context.name)
        self.context = context


class DataListener(StreamListener[E]):
    """A listener of a service that keeps data: `self.context.db`, `.outbox`."""

    context: DataContext

    def __init__(self, context: StreamContext) -> None:
        if not isinstance(context, DataContext):
            raise TypeError(f"{type(self).__name__} listens for a service that keeps data")
        super().__init__(context)


def context_of(app_or_request: FastAPI | Request) -> ServiceContext:
    app = app_or_request.app if isinstance(app_or_request, Request) else app_or_request
    context: ServiceContext = app.state.context
    return context


def own_of(context: ServiceContext, kind: type[T]) -> T:
    """The service's own objects (`own`), as the type the service made them."""
    if not isinstance(context.own, kind):
        raise LookupError(f"the {context.name} service holds no {kind.__name__}")
    return context.own


def _check_settings(context: ServiceContext, kind: type[ProcessSettings], names: str) -> None:
    if not isinstance(context.settings, kind):
        shape = type(context).__name__
        raise TypeError(f"{context.name}: a {shape} runs with {kind.__name__} ({names})")


def _merged(*index_sets: Mapping[str, Sequence[IndexModel]]) -> dict[str, list[IndexModel]]:
    """The indexes of every set, per collection (a collection may be in several)."""
    merged: dict[str, list[IndexModel]] = {}
    for index_set in index_sets:
        for collection, models in index_set.items():
            merged.setdefault(collection, []).extend(models)
    return merged
