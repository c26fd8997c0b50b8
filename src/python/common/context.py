"""One typed place for what a running service holds: `ServiceContext`, built once by
`create_app` and kept on `app.state.context`. Routes reach it through `common.deps`;
listeners and workers get it as `self.context`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fastapi import FastAPI, Request
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from common.nats_client import NatsClientManager
from common.settings import ProcessSettings

if TYPE_CHECKING:
    from common.events.listener import Listener
    from common.observability.metrics import Metrics
    from common.outbox import Outbox
    from common.revocations import RevokedSessions

T = TypeVar("T")


class Worker(Protocol):
    """A service's own background task (e.g. payments' settler), started after the
    listeners with the service's context and stopped before them."""

    async def start(self, context: ServiceContext) -> None: ...

    async def stop(self) -> None: ...


W = TypeVar("W", bound=Worker)


@dataclass(eq=False)
class ServiceContext:
    name: str
    settings: ProcessSettings
    nats: NatsClientManager
    workers: Sequence[Worker] = ()
    jwt_key: str | None = None  # services that check sessions
    mongo: AsyncMongoClient[dict[str, Any]] | None = None  # (connected at start)
    database: AsyncDatabase[dict[str, Any]] | None = None
    event_outbox: Outbox | None = None  # services that record events
    revoked_sessions: RevokedSessions | None = None
    listeners: list[Listener[Any]] = field(default_factory=list)
    metrics: Metrics | None = None
    exit_code: int = 0  # 1 when NATS closed for good: the orchestrator restarts us
    provided: Mapping[type, object] = field(default_factory=dict)

    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        """The service's database (only services that keep data have one)."""
        if self.database is None:
            raise RuntimeError(f"the {self.name} service has no database (or it is not started)")
        return self.database

    @property
    def outbox(self) -> Outbox:
        if self.event_outbox is None:
            raise RuntimeError(f"the {self.name} service records no events (or it is not started)")
        return self.event_outbox

    def get(self, kind: type[T]) -> T:
        """One of the service's own objects its routes need, by the type it was provided
        as (auth's `Passwords`, payments' `PaymentProvider`): `create_app(provides=...)`."""
        try:
            thing: T = self.provided[kind]  # type: ignore[assignment]
        except KeyError:
            raise LookupError(f"the {self.name} service provides no {kind.__name__}") from None
        return thing

    def worker(self, kind: type[W]) -> W:
        """This service's worker of that class (a listener or a route hands it work)."""
        for worker in self.workers:
            if isinstance(worker, kind):
                return worker
        raise LookupError(f"the {self.name} service has no {kind.__name__}")


def context_of(app_or_request: FastAPI | Request) -> ServiceContext:
    app = app_or_request.app if isinstance(app_or_request, Request) else app_or_request
    context: ServiceContext = app.state.context
    return context
