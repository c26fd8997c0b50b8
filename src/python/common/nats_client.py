"""The NATS client manager: the original's `NatsWrapper`, done the asyncio way.

One per process (services keep it on `app.state`, routes get it by dependency, so tests
can swap in a fake). `connect()` awaits the connection and raises if it cannot be made;
after that the client reconnects forever with backoff, logging each disconnect and
reconnect. `drain()` on shutdown lets in-flight handlers finish and flushes publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import StreamConfig, StreamInfo
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from common.events.contracts import TICKETING_STREAM

log = logging.getLogger(__name__)

JETSTREAM_READY_WAIT = 30.0
"""Seconds `ensure_stream` waits for a JetStream cluster that is still electing leaders."""
NO_PEERS = 10005  # JetStream's "no suitable peers for placement": nodes not joined yet


class NatsConnectError(RuntimeError):
    pass


def redacted(url: str) -> str:
    """The URL as logs may show it: `nats://tickets:***@nats-srv:4222`."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def server_urls(url: str) -> list[str]:
    """`nats://a:4222, nats://b:4222` -> both; one URL -> itself."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise NatsConnectError(f"No NATS server in {url!r}")
    return servers


def _credentials(servers: list[str]) -> tuple[str | None, str | None]:
    """The user and password of the first URL that has them."""
    for server in servers:
        parts = urlsplit(server if "://" in server else f"nats://{server}")
        if parts.username is not None and parts.password is not None:
            return unquote(parts.username), unquote(parts.password)
    return None, None


def _stricter(ours: float | None, theirs: float | None) -> float | None:
    """The tighter of two stream limits, where None, 0 and -1 mean "no limit"."""
    limits = [limit for limit in (ours, theirs) if limit is not None and limit > 0]
    return min(limits) if limits else ours


class NatsClientManager:
    def __init__(self, stream: StreamConfig = TICKETING_STREAM) -> None:
        self.stream = stream  # what ensure_stream makes: the app sets this environment's limits
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._closing = False
        self._on_unexpected_close: Callable[[], Awaitable[None] | None] | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("Cannot access NATS client before connecting")
        return self._client

    @property
    def jetstream(self) -> JetStreamContext:
        if self._jetstream is None:
            raise RuntimeError("Cannot access NATS client before connecting")
        return self._jetstream

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def connect(
        self,
        url: str,
        name: str,
        *,
        connect_timeout: float = 2.0,
        reconnect_wait: float = 1.0,
        on_unexpected_close: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        """Connect (raising NatsConnectError if no server can be reached now).

        `url` may list a cluster's servers, comma-separated: the client connects to one
        and, if that one goes, reconnects to another (it also learns the rest of the
        cluster from the server it reaches). Credentials in a URL are used for every
        server, the learnt ones too (nats-py would send them only to the URL's own).

        `on_unexpected_close` runs if the connection closes for good while not shutting
        down — services use it to exit non-zero, as the original's `process.exit()` does.
        """
        self._on_unexpected_close = on_unexpected_close
        self._closing = False
        servers = server_urls(url)
        user, password = _credentials(servers)
        try:
            self._client = await nats.connect(
                servers=servers,
                user=user,
                password=password,
                name=name,
                connect_timeout=connect_timeout,
                allow_reconnect=True,
                # nats-py retries the *first* connect forever when this is -1; we want
                # start-up to fail fast instead, so allow one retry here ...
                max_reconnect_attempts=1,
                reconnect_time_wait=reconnect_wait,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                error_cb=self._error,
                closed_cb=self._closed,
            )
        except Exception as exc:
            raise NatsConnectError(
                f"Could not connect to NATS at {redacted(url)}: {exc or type(exc).__name__}"
            ) from exc
        # ... and, once connected, reconnect forever while the process runs.
        self._client.options["max_reconnect_attempts"] = -1
        self._jetstream = self._client.jetstream()
        log.info("Connected to NATS at %s as %s", redacted(url), name)

    async def ensure_stream(
        self, config: StreamConfig | None = None, *, within: float = JETSTREAM_READY_WAIT
    ) -> StreamInfo:
        """Create the stream, or bring an existing one to `config` (default: `stream`;
        idempotent) — except a limit an operator made stricter by hand, or more
        replicas than configured, which stay (a service never weakens the stream).

        A JetStream cluster answers nothing until it has elected its leaders (seconds
        after its nodes start, as when a whole Kubernetes namespace comes up at once):
        that is retried for `within` seconds before the error is raised — as is a new
        stream's placement while fewer nodes than its replicas have joined."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                return await self._ensure_stream(config or self.stream)
            except (NatsTimeoutError, ServiceUnavailableError, BadRequestError) as exc:
                transient = not isinstance(exc, BadRequestError) or exc.err_code == NO_PEERS
                if not transient or asyncio.get_running_loop().time() >= deadline:
                    raise
                log.warning("JetStream is not ready yet (%r); retrying", exc)
                await asyncio.sleep(0.5)

    async def _ensure_stream(self, config: StreamConfig) -> StreamInfo:
        js = self.jetstream
        try:
            existing = (await js.stream_info(config.name)).config
        except NotFoundError:
            return await js.add_stream(config)
        config = dataclasses.replace(
            config,
            max_age=_stricter(config.max_age, existing.max_age),
            max_bytes=_stricter(config.max_bytes, existing.max_bytes),
            max_msgs=_stricter(config.max_msgs, existing.max_msgs),
            num_replicas=max(config.num_replicas or 1, existing.num_replicas or 1),
        )
        return await js.update_stream(config)

    async def check(self, timeout: float = 1.0) -> bool:
        """For /readyz: connected, and the server answers a round trip."""
        if not self.is_connected:
            return False
        try:
            await self.client.flush(timeout=timeout)
        except Exception:
            return False
        return True

    async def drain(self, timeout: float = 10.0) -> None:
        """Shutdown: finish in-flight messages, flush pending publishes, close. While
        disconnected there is nothing to flush: just stop reconnecting and close."""
        self._closing = True
        client, self._client, self._jetstream = self._client, None, None
        if client is None or client.is_closed:
            return
        try:
            if client.is_connected:
                await asyncio.wait_for(client.drain(), timeout)
            else:
                await asyncio.wait_for(client.close(), timeout)
        except Exception as exc:  # a drain cut short must not block the shutdown
            log.warning("NATS drain did not complete: %r", exc)
            if not client.is_closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), timeout)

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("Disconnected from NATS; reconnecting")

    async def _reconnected(self) -> None:
        url = self._client.connected_url if self._client else None
        where = f"{url.hostname}:{url.port}" if url else "?"  # never the credentials
        log.info("Reconnected to NATS at %s", where)

    async def _error(self, exc: Exception) -> None:
        log.warning("NATS error: %r", exc)

    async def _closed(self) -> None:
        if self._closing:
            log.info("NATS connection closed")
            return
        log.error("NATS connection closed!")
        if self._on_unexpected_close is not None:
            result = self._on_unexpected_close()
            if asyncio.iscoroutine(result):
                await result
