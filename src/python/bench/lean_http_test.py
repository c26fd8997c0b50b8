"""The benchmark's lean HTTP client against a scripted HTTP/1.1 server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bench.lean_http import LeanClient


@dataclass
class Server:
    port: int = 0
    connections: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)  # (head, body)


async def _handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    server.connections += 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            server.requests.append((head, body))
            path = head.split(b" ")[1]
            if path == b"/chunked":
                writer.write(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                )
            elif path == b"/close-after":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
                writer.close()  # an idle keep-alive connection the server drops
                return
            elif path == b"/half":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
                await writer.drain()
                writer.close()  # dies mid-answer: must not be retried
                return
            else:
                answer = json.dumps({"path": path.decode(), "body": body.decode()}).encode()
                writer.write(
                    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listener = await asyncio.start_server(lambda r, w: _handle(state, r, w), "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state
        listener.close()


async def test_json_posts_carry_the_cookie_and_reuse_one_connection(server: Server) -> None:
    async with LeanClient(f"http://127.0.0.1:{server.port}", {"session": "abc="}) as client:
        first = await client.post("/api/tickets", json={"title": "x", "price": 5})
        second = await client.get("/api/tickets/1")
    assert first.status_code == 201
    assert first.json() == {"path": "/api/tickets", "body": '{"title": "x", "price": 5}'}
    assert second.json()["path"] == "/api/tickets/1"
    assert server.connections == 1
    head = server.requests[0][0].lower()
    assert b"cookie: session=abc=\r\n" in head
    assert b"content-type: application/json\r\n" in head
    assert b"cookie: session=abc=\r\n" in server.requests[1][0].lower()


async def test_a_chunked_answer_is_assembled(server: Server) -> None:
    async with LeanClient(f"http://127.0.0.1:{server.port}") as client:
        response = await client.get("/chunked")
    assert (response.status_code, response.text) == (200, "hello world")


async def test_a_connection_the_server_closed_while_idle_is_replaced(server: Server) -> None:
    async with LeanClient(f"http://127.0.0.1:{server.port}") as client:
        assert (await client.get("/close-after")).status_code == 200
        await asyncio.sleep(0.05)  # the server has closed it by now
        assert (await client.get("/again")).json()["path"] == "/again"
    assert server.connections == 2
    assert [h.split(b" ")[1] for h, _ in server.requests] == [b"/close-after", b"/again"]


async def test_a_connection_lost_mid_answer_is_an_error_not_a_silent_retry(
    server: Server,
) -> None:
    async with LeanClient(f"http://127.0.0.1:{server.port}") as client:
        with pytest.raises(ConnectionError):
            await client.post("/half", json={})
    assert len(server.requests) == 1  # sent once, never again
