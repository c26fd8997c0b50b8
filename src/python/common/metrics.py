"""Prometheus metrics at `/metrics`: what an operator alerts on (docs/observability.md).

The work keeps its own plain counts where it is done (the outbox's `published`, a
listener's `outcomes`), so the core classes need no metrics library; this module turns
them, and readings taken at scrape time (the outbox backlog, each consumer's pending
messages), into the Prometheus text format. One registry per app: tests run many apps
in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from nats.errors import Error as NatsError
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.context import DataContext, ServiceContext, StreamContext
from common.events.contracts import STREAM_NAME
from common.outbox import Outbox

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """An app's registry: the HTTP histogram, and a collector of everything else."""

    def __init__(self, context: ServiceContext) -> None:
        self.registry = CollectorRegistry()
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP requests by route template, method and status, until the response starts",
            ["route", "method", "status"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        # more gauges a service adds (name -> (help, read)): auth's argon2 queue
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.readings = ScrapeReadings(context, self.gauges)
        self.registry.register(self.readings)

    async def exposition(self) -> bytes:
        await self.readings.refresh()
        return generate_latest(self.registry)


def metrics_of(app: FastAPI) -> Metrics:
    """The app's metrics (made by `create_app`): a service adds its own gauges to them."""
    metrics: Metrics = app.state.metrics
    return metrics


class ScrapeReadings(Collector):
    """The outbox, the listeners and the consumers, read when Prometheus scrapes."""

    def __init__(
        self, context: ServiceContext, gauges: dict[str, tuple[str, Callable[[], float]]]
    ) -> None:
        self.context = context
        self.gauges = gauges
        self.backlog: int | None = None
        self.oldest_age: float | None = None
        self.consumer_pending: dict[str, tuple[int, int]] = {}  # durable -> (pending, acks)

    @property
    def outbox(self) -> Outbox | None:
        context = self.context
        return context.outbox if isinstance(context, DataContext) and context.events_in else None

    @property
    def listeners(self) -> list[Any]:
        return self.context.running if isinstance(self.context, StreamContext) else []

    async def refresh(self) -> None:
        if self.outbox is not None:
            self.backlog, self.oldest_age = _backlog(self.outbox)
        self.consumer_pending = {}
        for listener in self.listeners:
            try:
                info = await listener.js.consumer_info(STREAM_NAME, listener.durable)
            except (NatsError, TimeoutError):
                continue
            self.consumer_pending[listener.durable] = (info.num_pending, info.num_ack_pending)

    def collect(self) -> Iterator[Metric]:
        outbox = self.outbox
        if outbox is not None:
            published = CounterMetricFamily(
                "events_published",
                "Events acknowledged by JetStream, by subject",
                labels=["subject"],
            )
            for subject, count in sorted(outbox.published.items()):
                published.add_metric([subject], count)
            yield published
            if self.backlog is not None:
                yield GaugeMetricFamily(
                    "outbox_backlog",
                    "Events this process has not had acknowledged yet",
                    value=self.backlog,
                )
                yield GaugeMetricFamily(
                    "outbox_oldest_unsent_age_seconds",
                    "How long the oldest unsent event has waited (0: none)",
                    value=self.oldest_age or 0.0,
                )
        handled = CounterMetricFamily(
            "events_handled",
            "Deliveries handled by the listeners, by subject and outcome (ok, retried, ahead, "
            "poisoned, invalid, redelivery_skipped)",
            labels=["subject", "outcome"],
        )
        redelivered = CounterMetricFamily(
            "events_redelivered",
            "Deliveries that were not the first, by subject",
            labels=["subject"],
        )
        for listener in self.listeners:
            subject = listener.subject.value
            for outcome, count in sorted(listener.outcomes.items()):
                handled.add_metric([subject, outcome], count)
            redelivered.add_metric([subject], listener.redelivered)
        yield handled
        yield redelivered
        pending = GaugeMetricFamily(
            "consumer_pending_messages",
            "Messages a durable consumer has not delivered yet",
            labels=["durable"],
        )
        ack_pending = GaugeMetricFamily(
            "consumer_ack_pending_messages",
            "Messages a durable consumer delivered and awaits the ack of",
            labels=["durable"],
        )
        for durable, (waiting, unacked) in sorted(self.consumer_pending.items()):
            pending.add_metric([durable], waiting)
            ack_pending.add_metric([durable], unacked)
        yield pending
        yield ack_pending
        for name, (help_text, read) in self.gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())


def _backlog(outbox: Outbox) -> tuple[int, float | None]:
    """This process's unsent events, and how long the oldest of them has waited."""
    count = outbox.unsent()
    oldest = outbox.oldest_unsent_at()
    return count, None if oldest is None else (datetime.now(UTC) - oldest).total_seconds()


class HttpMetricsMiddleware:
    """Times every request until its response starts, labelled by the route template
    (`/api/tickets/{ticket_id}`, not the id: bounded label values) or `unmatched`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                self.metrics.http_duration.labels(
                    getattr(route, "path", "unmatched"), scope["method"], str(message["status"])
                ).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed_send)
