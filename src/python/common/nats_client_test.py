"""The client manager against a REAL nats-server: connect, reconnect, drain, stream."""

import asyncio
import logging
import uuid

import pytest
from nats.js.api import StorageType
from nats.js.errors import BadRequestError

from common.events import STREAM_NAME, TICKETING_STREAM
from common.nats_client import (
    NO_PEERS,
    NatsClientManager,
    NatsConnectError,
    redacted,
    server_urls,
)
from harness.servers import NatsServer
from testkit.waiting import eventually


def test_client_and_jetstream_raise_before_connecting():
    manager = NatsClientManager()
    with pytest.raises(RuntimeError, match="Cannot access NATS client before connecting"):
        _ = manager.client
    with pytest.raises(RuntimeError, match="Cannot access NATS client before connecting"):
        _ = manager.jetstream
    assert manager.is_connected is False


async def test_connect_fails_fast_with_a_clear_error_when_no_server(tmp_path):
    server = NatsServer(tmp_path).start()
    url = server.url
    server.stop()  # a port that nothing listens on now
    manager = NatsClientManager()
    with pytest.raises(NatsConnectError, match=f"Could not connect to NATS at {url}"):
        await manager.connect(url, "nobody", connect_timeout=0.5)
    assert await manager.check() is False


async def test_a_url_list_connects_to_a_server_that_is_up(nats_server, tmp_path):
    down = NatsServer(tmp_path).start()
    dead_url = down.url
    down.stop()
    manager = NatsClientManager()
    await manager.connect(f"{dead_url} , {nats_server.url}", "list-test", connect_timeout=0.5)
    assert manager.is_connected
    await manager.drain()


def test_server_urls_splits_a_cluster_list_and_refuses_an_empty_one():
    assert server_urls("nats://a:4222") == ["nats://a:4222"]
    assert server_urls("nats://a:4222, nats://b:4222,") == ["nats://a:4222", "nats://b:4222"]
    with pytest.raises(NatsConnectError, match="No NATS server"):
        server_urls(" , ")


async def test_ensure_stream_waits_while_a_cluster_cannot_place_the_stream_yet(nats_server):
    """A node not joined yet answers "no suitable peers for placement" (400): retried
    within the wait; any other refusal is raised at once."""
    manager = NatsClientManager()
    await manager.connect(nats_server.url, "placement-test")
    real = manager._ensure_stream
    calls = 0

    async def not_placed_twice(config):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise BadRequestError(code=400, err_code=NO_PEERS, description="no suitable peers")
        return await real(config)

    manager._ensure_stream = not_placed_twice  # type: ignore[method-assign]
    assert (await manager.ensure_stream()).config.name == STREAM_NAME
    assert calls == 3

    async def refused(config):  # type: ignore[no-untyped-def]
        raise BadRequestError(code=400, err_code=10058, description="stream name in use")

    manager._ensure_stream = refused  # type: ignore[method-assign]
    with pytest.raises(BadRequestError):
        await asyncio.wait_for(manager.ensure_stream(), 5)
    await manager.drain()


async def test_connect_then_check_and_drain(nats_server):
    manager = NatsClientManager()
    await manager.connect(nats_server.url, "check-test")
    assert manager.is_connected
    assert await manager.check()
    client = manager.client
    await manager.drain()
    assert client.is_closed
    assert await manager.check() is False
    with pytest.raises(RuntimeError, match="before connecting"):
        _ = manager.client


async def test_ensure_stream_is_idempotent_and_applies_the_contract(nats_manager):
    info = await nats_manager.ensure_stream()
    again = await nats_manager.ensure_stream()
    assert info.config.name == again.config.name == STREAM_NAME
    assert set(again.config.subjects) == {
        "ticket.>",
        "order.>",
        "expiration.>",
        "payment.>",
        "session.>",
    }
    assert again.config.duplicate_window == 120
    assert again.config.storage == StorageType.FILE


async def test_ensure_stream_updates_an_existing_stream_to_the_contract(nats_manager):
    """E.g. a stream an older version made (./run's .state/): fewer subjects, a shorter
    dedupe window, no message schedules (the server can turn those on, never off)."""
    js = nats_manager.jetstream
    await js.delete_stream(STREAM_NAME)
    await js.add_stream(name=STREAM_NAME, subjects=["ticket.>"], duplicate_window=5)
    info = await nats_manager.ensure_stream(TICKETING_STREAM)
    assert len(info.config.subjects) == 5
    assert info.config.duplicate_window == 120
    assert info.config.allow_msg_schedules is True


async def test_reconnects_after_the_server_restarts_and_keeps_publishing(nats_server, caplog):
    manager = NatsClientManager()
    await manager.connect(nats_server.url, "reconnect-test", reconnect_wait=0.1)
    await manager.ensure_stream()
    lost = asyncio.Event()
    manager.client._disconnected_cb = _and_then(manager.client._disconnected_cb, lost.set)
    caplog.set_level(logging.INFO)
    try:
        for _ in range(2):
            lost.clear()
            nats_server.restart()
            await asyncio.wait_for(lost.wait(), 20)
            await eventually(lambda: manager.is_connected)
            ack = await manager.jetstream.publish(
                "ticket.created", b"{}", headers={"Nats-Msg-Id": uuid.uuid4().hex}
            )
            assert ack.stream == STREAM_NAME
        assert await manager.check()
        messages = [r.getMessage() for r in caplog.records]
        assert "Disconnected from NATS; reconnecting" in messages
        assert any(m.startswith("Reconnected to NATS") for m in messages)
    finally:
        await manager.drain()


async def test_unexpected_close_calls_back_but_shutdown_does_not(nats_server):
    calls: list[str] = []
    manager = NatsClientManager()
    await manager.connect(
        nats_server.url, "close-test", on_unexpected_close=lambda: calls.append("x")
    )
    await manager.client.close()  # closed, not by us shutting down
    await eventually(lambda: calls == ["x"])

    quiet = NatsClientManager()
    await quiet.connect(
        nats_server.url, "drain-test", on_unexpected_close=lambda: calls.append("y")
    )
    await quiet.drain()
    await asyncio.sleep(0)  # let a callback run if one were (wrongly) scheduled
    assert calls == ["x"]


def _and_then(original, extra):
    async def callback():
        if original is not None:
            await original()
        extra()

    return callback


async def test_drain_while_disconnected_closes_without_waiting_for_the_server(tmp_path):
    server = NatsServer(tmp_path).start()
    manager = NatsClientManager()
    await manager.connect(server.url, "drain-disconnected", reconnect_wait=0.1)
    client = manager.client
    server.stop()
    await eventually(lambda: not client.is_connected)
    await asyncio.wait_for(manager.drain(), 30)  # must not hang while reconnecting
    assert client.is_closed


def test_credentials_in_the_url_never_reach_the_logs():
    assert redacted("nats://tickets:s3cr3t@nats-srv:4222") == "nats://tickets:***@nats-srv:4222"
    assert redacted("nats://nats-srv:4222") == "nats://nats-srv:4222"
