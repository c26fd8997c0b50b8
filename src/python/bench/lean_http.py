"""A lean HTTP/1.1 keep-alive client for the benchmark's load generator.

Why: the load generator shares the 2 cores with the services and the servers, so its
own cost per request is part of every figure. Measured here (a bare FastAPI `hello`
route on uvicorn + uvloop + httptools, c=1): httpx 450 requests/s, this client 2,573
— httpx spends about 2 ms of CPU per request, more than the service it measures. The
floor's client (PyMongo, C BSON) is lean; the HTTP cases' client must be too, or the
ratios measure httpx. Asyncio streams and httptools' C parser (the one uvicorn uses);
JSON only, as the API speaks; one connection per concurrent caller, kept alive.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools


@dataclass
class LeanResponse:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class _Reader:
    """httptools callbacks: collects one response."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        # asked now: once the parser has moved past the message it no longer knows
        self.keep_alive = self.parser.should_keep_alive()


class _StaleConnection(Exception):
    """A kept-alive connection the server had closed before we used it."""


def cookie_header(cookies: dict[str, str] | None) -> str:
    """A Cookie header line for these cookies ("" for none)."""
    cookie = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
    return f"cookie: {cookie}\r\n" if cookie else ""


class LeanClient:
    def __init__(self, base_url: str, cookies: dict[str, str] | None = None) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self._host = f"host: {self.host}:{self.port}\r\n"
        self._cookie = cookie_header(cookies)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> LeanResponse:
        return await self.request("GET", path)

    async def post(self, path: str, json: Any = None, cookie: str | None = None) -> LeanResponse:
        return await self.request("POST", path, json=json, cookie=cookie)

    async def request(
        self, method: str, path: str, json: Any = None, cookie: str | None = None
    ) -> LeanResponse:
        """`cookie`: this request's Cookie header line (`cookie_header`), instead of the
        client's own."""
        body = b"" if json is None else jsonlib.dumps(json).encode()
        fixed = self._host + (self._cookie if cookie is None else cookie)
        head = f"{method} {path} HTTP/1.1\r\n{fixed}content-length: {len(body)}\r\n"
        if json is not None:
            head += "content-type: application/json\r\n"
        request = head.encode() + b"\r\n" + body
        while self._idle:  # a kept-alive connection, unless the server has closed it
            connection = self._idle.pop()
            try:
                return await self._exchange(connection, request, reused=True)
            except _StaleConnection:
                connection[1].close()
        connection = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(connection, request, reused=False)

    async def _exchange(
        self,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        request: bytes,
        *,
        reused: bool,
    ) -> LeanResponse:
        reader, writer = connection
        collected = _Reader()
        received = False
        try:
            writer.write(request)
            while not collected.complete:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionResetError("the server closed the connection")
                received = True
                collected.parser.feed_data(data)
        except (ConnectionError, OSError) as exc:
            writer.close()
            if reused and not received:
                # Nothing came back on a connection idle since its last answer: the
                # server had closed it (keep-alive timeout); the request was not seen.
                raise _StaleConnection from exc
            raise
        status = collected.parser.get_status_code()
        if collected.keep_alive:
            self._idle.append(connection)
        else:
            writer.close()
        return LeanResponse(status, b"".join(collected.body))

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
