"""App factory: everything a Ticketing service shares, so each service's `main` is short.

Start: connect Mongo (indexes created: fails fast if unreachable), connect NATS and
ensure the stream (for services with `EventingSettings`), then the outbox relay and
every listener. Serve `/healthz` and `/readyz`. Stop (SIGINT/SIGTERM, via uvicorn):
stop accepting, finish in-flight requests, stop the listeners, the relay's last flush,
drain NATS, close Mongo, exit 0. If NATS closes for good while running, the process
exits 1 so the orchestrator restarts it (the original's `process.exit()`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from common.auth import JWT_LEEWAY_SECONDS
from common.errors import (
    ErrorResponse,
    error_item,
    install_error_handlers,
)
from common.events.listener import Listener
from common.limits import LIMIT_INDEXES
from common.middleware import RequestContextMiddleware
from common.mongo import create_mongo_client, ensure_indexes, ping
from common.nats_client import NatsClientManager
from common.observability.logs import configure_logging
from common.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from common.observability.metrics import HttpMetricsMiddleware, Metrics
from common.observability.tracing import ServerSpans, configure_tracing, shutdown_tracing
from common.outbox import Outbox
from common.revocations import RevokedSessions
from common.settings import NatsSettings, ProcessSettings, ServiceSettings

log = logging.getLogger(__name__)

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: many a minute, nothing to follow."""

NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own OpenTelemetry is off: HTTP spans are `common.observability.tracing.ServerSpans`'
(cheaper), HTTP metrics `common.observability.metrics`' (Prometheus), errors logged by ours."""


class Worker(Protocol):
    """A service's own background task (e.g. payments' settler), started after the
    listeners with the service's context and stopped before them."""

    async def start(self, context: ServiceContext) -> None: ...

    async def stop(self) -> None: ...


W = TypeVar("W", bound=Worker)


@dataclass
class ServiceContext:
    """What a service's listeners get (`self.context`): the same database, outbox, NATS
    client and settings its routes use, and its workers."""

    db: AsyncDatabase[dict[str, Any]] | None
    outbox: Outbox | None
    nats: NatsClientManager
    settings: ProcessSettings
    workers: Sequence[Worker] = ()

    def worker(self, kind: type[W]) -> W:
        """This service's worker of that class (a listener hands it work)."""
        return find_worker(self.workers, kind)


def find_worker(workers: Sequence[Worker], kind: type[W]) -> W:
    """The worker of that class among a service's (routes: `app.state.workers`)."""
    for worker in workers:
        if isinstance(worker, kind):
            return worker
    raise LookupError(f"no {kind.__name__} in this service")


def create_app(
    *,
    name: str,
    settings: ProcessSettings,
    routers: Sequence[APIRouter] = (),
    database: str | None = None,
    indexes: Mapping[str, Sequence[IndexModel]] | None = None,
    outbox: Sequence[str] = (),
    listeners: Sequence[type[Listener[Any]]] = (),
    workers: Sequence[Worker] = (),
    nats: NatsClientManager | None = None,
) -> FastAPI:
    """Build a service app.

    `database`: its Mongo database (with `ServiceSettings`); none for a service that
    keeps nothing (expiration). `outbox`: the collections whose documents carry their
    own pending events (routes record through the `OutboxDep` dependency; the relay runs
    while the app does). `listeners`: Listener classes, each started as durable consumer
    `<name>-<subject>`. Events need `NatsSettings` (`EventingSettings` is both).
    `workers`: background tasks of the service's own (`Worker`), on `app.state.workers`.
    `nats`: tests pass the recording fake.
    """
    uses_mongo = database is not None
    uses_nats = isinstance(settings, NatsSettings)
    if uses_mongo != isinstance(settings, ServiceSettings):
        raise TypeError(f"{name}: a database goes with ServiceSettings (MONGO_URI)")
    if (outbox and not (uses_mongo and uses_nats)) or ((listeners or workers) and not uses_nats):
        raise TypeError(f"{name}: an outbox needs a database and NATS; listeners need NATS")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started: list[Listener[Any]] = []
        working: list[Worker] = []
        try:
            if isinstance(settings, ServiceSettings) and database is not None:
                app.state.mongo = create_mongo_client(settings.mongo_uri, name)
                app.state.db = app.state.mongo[database]
                await _check_mongo(app.state.mongo)
                await ensure_indexes(app.state.db, _merged(indexes or {}, LIMIT_INDEXES))
            if isinstance(settings, NatsSettings):
                await app.state.nats.connect(
                    settings.nats_url,
                    settings.nats_client_id,
                    on_unexpected_close=lambda: _exit_after_shutdown(app),
                )
                await app.state.nats.ensure_stream()
                if isinstance(settings, ServiceSettings):  # it checks tokens: sign-outs
                    app.state.revoked_sessions = RevokedSessions(leeway=JWT_LEEWAY_SECONDS)
                    await app.state.revoked_sessions.follow(app.state.nats.jetstream)
                if outbox:
                    app.state.outbox = Outbox(
                        app.state.db,
                        app.state.nats,
                        outbox,
                        publish_timeout=settings.publish_timeout,
                        interval=settings.outbox_interval,
                        dead_after=settings.outbox_dead_after,
                    )
                    await app.state.outbox.start()
                context = ServiceContext(
                    app.state.db, app.state.outbox, app.state.nats, settings, workers
                )
                for listener_class in listeners:
                    listener = listener_class(app.state.nats.jetstream, name, context)
                    await listener.start()
                    started.append(listener)
                for worker in workers:
                    await worker.start(context)
                    working.append(worker)
            app.state.listeners = started
            # What start-up made (modules, routes, models: most of the heap) lives as
            # long as the process: frozen, the collector stops rescanning it, and its
            # full passes stop pausing requests (p99 at c=16 57 -> 20 ms, BENCHMARKS.md)
            gc.collect()
            gc.freeze()
            log.info("%s ready", name)
            yield
        finally:
            for worker in reversed(working):
                await worker.stop()
            for listener in started:  # no new work first ...
                await listener.stop()
            if app.state.revoked_sessions is not None:
                await app.state.revoked_sessions.stop()
            if app.state.outbox is not None:  # ... then the relay's last flush ...
                await app.state.outbox.stop()
            await app.state.nats.drain()  # ... then in-flight publishes
            if app.state.mongo is not None:
                await app.state.mongo.close()
            log.info("%s stopped", name)

    app = FastAPI(
        title=f"Ticketing {name} service", lifespan=lifespan, telemetry=NO_FASTAPI_TELEMETRY
    )
    app.state.settings = settings
    app.state.name = name
    if isinstance(settings, ServiceSettings):
        app.state.jwt_key = settings.jwt_key.get_secret_value()
    app.state.nats = nats or NatsClientManager()
    if isinstance(settings, NatsSettings):
        app.state.nats.stream = settings.stream_config()  # this environment's limits
    app.state.mongo = app.state.db = app.state.outbox = app.state.revoked_sessions = None
    app.state.listeners = []
    app.state.workers = list(workers)
    app.state.exit_code = 0
    app.state.metrics = Metrics(app)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    # outer: the refusals above (413, 415) are timed and traced too
    app.add_middleware(HttpMetricsMiddleware, metrics=lambda: app.state.metrics)
    app.add_middleware(ServerSpans, untraced=UNTRACED_PATHS)
    app.include_router(health_router(uses_mongo=uses_mongo, uses_nats=uses_nats))
    for router in routers:
        app.include_router(router)
    _document_400_not_422(app)
    return app


def _merged(
    *index_sets: Mapping[str, Sequence[IndexModel]],
) -> dict[str, list[IndexModel]]:
    """The indexes of every set, per collection (a collection may be in several)."""
    merged: dict[str, list[IndexModel]] = {}
    for index_set in index_sets:
        for collection, models in index_set.items():
            merged.setdefault(collection, []).extend(models)
    return merged


def _document_400_not_422(app: FastAPI) -> None:
    """FastAPI documents validation failures as 422; ours answer 400 in the error shape."""
    build_schema = app.openapi
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_schema()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault(
                            "400",
                            {
                                "description": "Invalid input (each error names its field)",
                                "content": {"application/json": {"schema": error_ref}},
                            },
                        )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            error_schema = ErrorResponse.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemas.update(error_schema.pop("$defs", {}))
            schemas["ErrorResponse"] = error_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _check_mongo(mongo: AsyncMongoClient[dict[str, Any]]) -> None:
    try:
        await mongo.admin.command("ping")
    except PyMongoError as exc:
        raise RuntimeError(f"Could not reach MongoDB (MONGO_URI): {exc}") from exc


def health_router(*, uses_mongo: bool, uses_nats: bool) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is up (liveness)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Mongo and NATS (those it uses) are reachable (readiness)")
    async def readyz(request: Request) -> JSONResponse:
        checks = {}
        if uses_mongo:
            checks["mongo"] = await ping(request.app.state.mongo)
        if uses_nats:
            checks["nats"] = await request.app.state.nats.check()
        down = [dependency for dependency, ok in checks.items() if not ok]
        if down:
            body = {
                "errors": [error_item(f"Not ready: {', '.join(down)} unreachable")],
                "checks": checks,
            }
            return JSONResponse(status_code=503, content=body)
        outbox = request.app.state.outbox
        if outbox is not None:
            bound = request.app.state.settings.outbox_stuck_seconds
            checks["outbox"] = not outbox.stuck(timedelta(seconds=bound))
            if not checks["outbox"]:
                message = f"Not ready: events unsent for over {bound:g} s (is the stream full?)"
                body = {"errors": [error_item(message)], "checks": checks}
                return JSONResponse(status_code=503, content=body)
        return JSONResponse({"status": "ready", "checks": checks})

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus text format (README, "Metrics")."""
        body = await request.app.state.metrics.exposition()
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    return router


def _exit_after_shutdown(app: FastAPI) -> None:
    """Ask uvicorn for a graceful shutdown, then `run_service` exits 1."""
    app.state.exit_code = 1
    os.kill(os.getpid(), signal.SIGTERM)


def run_service(app: FastAPI, settings: ProcessSettings) -> None:
    """Serve until SIGINT/SIGTERM; exit with the app's exit code (0, or 1 if NATS closed)."""
    import uvicorn  # only the process entry point needs the server

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its graceful shutdown, so the process would
        end "killed by signal"; a clean shutdown should exit with our code instead."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SHUTDOWN_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    configure_logging(settings.log_level, settings.log_format, app.state.name)
    configure_tracing(
        app.state.name,
        traces_dir=settings.traces_dir,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        loop="uvloop",  # libuv's event loop and the httptools parser: the fast path
        http="httptools",
        proxy_headers=False,  # X-Forwarded-For is read per service, trusting only its own hops
        timeout_graceful_shutdown=20,
        access_log=False,
        log_config=None,  # uvicorn's lines go through ours (JSON or text)
    )
    server = GracefulServer(config)
    try:
        server.run()
    finally:
        shutdown_tracing()  # the last spans are exported, not dropped
    if not server.started:
        sys.exit(3)  # start-up failed; the reason is logged above
    sys.exit(app.state.exit_code)


_SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
