"""The app factory against REAL servers: probes, start-up failures, SIGTERM, NATS loss."""

import asyncio
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest
from fastapi import APIRouter, Request

from common.app import create_app, run_service
from common.context import DataContext, StreamContext
from common.deps import DbDep
from common.nats_client import NatsClientManager, NatsConnectError
from common.settings import EventingSettings, ProcessSettings, ServiceSettings, load_settings
from harness.servers import python_path
from testkit.auth import TEST_JWT_KEY
from testkit.fakes import RecordingNats
from testkit.http import app_client
from testkit.waiting import eventually

router = APIRouter()


@router.post("/things")
async def add_thing(db: DbDep, request: Request) -> dict:
    await db.things.insert_one({"n": 1})
    nats = request.app.state.context.nats
    return {"count": await db.things.count_documents({}), "nats": type(nats).__name__}


@router.get("/slow")
async def slow() -> dict:
    print("slow request started", flush=True)
    await asyncio.sleep(1)
    return {"done": True}


@router.post("/close-nats")
async def close_nats(request: Request) -> dict:
    await request.app.state.context.nats.client.close()  # as if the connection were lost for good
    return {}


def settings(mongo_uri: str, nats_url: str = "nats://127.0.0.1:1") -> EventingSettings:
    common = {"mongo_uri": mongo_uri, "jwt_key": TEST_JWT_KEY, "cookie_secure": False}
    return EventingSettings(**common, nats_url=nats_url, nats_client_id="app-test")


def demo_app(settings: EventingSettings, database: str, nats=None, routers=(router,)):
    context = DataContext(
        name="demo", settings=settings, database=database, nats=nats or NatsClientManager()
    )
    return create_app(context, routers=routers)


async def test_probes_and_routes_with_real_mongo_and_nats(mongo_server, nats_server):
    app = demo_app(settings(mongo_server.uri, nats_server.url), "demo_probe")
    async with app_client(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"mongo": True, "nats": True}}
        assert (await client.post("/things")).json() == {"count": 1, "nats": "NatsClientManager"}
        assert (await client.get("/nope")).status_code == 404
        assert "/healthz" in (await client.get("/openapi.json")).text


async def test_readyz_reports_nats_down_then_recovers(mongo_server, nats_server):
    app = demo_app(settings(mongo_server.uri, nats_server.url), "demo_ready")
    async with app_client(app) as client:
        nats_server.stop()
        await eventually(lambda: not app.state.context.nats.is_connected)
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json() == {
            "errors": [{"message": "Not ready: nats unreachable"}],
            "checks": {"mongo": True, "nats": False},
        }
        nats_server.restart()
        await eventually(lambda: app.state.context.nats.is_connected)
        assert (await client.get("/readyz")).status_code == 200


def test_a_shape_refuses_settings_it_cannot_run_with():
    """A database goes with events (EventingSettings); listeners need NATS."""
    only_mongo = ServiceSettings(mongo_uri="mongodb://x", jwt_key=TEST_JWT_KEY)
    with pytest.raises(TypeError, match="demo: a DataContext runs with EventingSettings"):
        DataContext(name="demo", settings=only_mongo, database="d")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="demo: a StreamContext runs with NatsSettings"):
        StreamContext(name="demo", settings=ProcessSettings())  # type: ignore[arg-type]


async def test_recording_fake_replaces_nats(mongo_server):
    fake = RecordingNats()
    app = demo_app(settings(mongo_server.uri, "nats://127.0.0.1:1"), "demo_fake", nats=fake)
    async with app_client(app) as client:
        assert (await client.post("/things")).json()["nats"] == "RecordingNats"


async def test_start_fails_clearly_when_mongo_is_unreachable():
    app = demo_app(
        settings("mongodb://127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=200"),
        "d",
        routers=[],
    )
    with pytest.raises(RuntimeError, match=r"Could not reach MongoDB \(MONGO_URI\)"):
        async with app_client(app):
            pass


async def test_start_fails_clearly_when_nats_is_unreachable(mongo_server):
    app = demo_app(settings(mongo_server.uri, "nats://127.0.0.1:1"), "d", routers=[])
    with pytest.raises(NatsConnectError, match="Could not connect to NATS at nats://127.0.0.1:1"):
        async with app_client(app):
            pass


# --- the real process: this file doubles as a tiny service (see __main__ below) ---


def start_service(mongo_server, nats_server) -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ,
        "PYTHONPATH": python_path(),
        "MONGO_URI": mongo_server.uri,
        "NATS_URL": nats_server.url,
        "JWT_KEY": TEST_JWT_KEY,
        "HOST": "127.0.0.1",
        "PORT": "0",
        "NATS_CLIENT_ID": "sigterm-test",
    }
    process = subprocess.Popen(
        [sys.executable, __file__],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    for line in process.stdout:
        match = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
        if match:
            return process, match.group(1)
    raise AssertionError(f"service did not start, exit {process.wait()}")


def rest_of_output(process: subprocess.Popen) -> str:
    output = process.stdout.read()
    process.stdout.close()
    return output


async def test_sigterm_finishes_in_flight_requests_drains_and_exits_0(mongo_server, nats_server):
    process, url = start_service(mongo_server, nats_server)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/readyz")).status_code == 200
            in_flight = asyncio.create_task(client.get("/slow"))
            line = await asyncio.to_thread(process.stdout.readline)
            assert "slow request started" in line
            process.send_signal(signal.SIGTERM)
            response = await in_flight
        assert response.status_code == 200
        assert response.json() == {"done": True}
        assert await asyncio.to_thread(process.wait, 30) == 0
        output = rest_of_output(process)
        assert "NATS connection closed" in output
        assert "demo stopped" in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


async def test_losing_nats_for_good_exits_1_for_a_restart(mongo_server, nats_server):
    process, url = start_service(mongo_server, nats_server)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/close-nats")
        assert await asyncio.to_thread(process.wait, 30) == 1
        assert "NATS connection closed!" in rest_of_output(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    service_settings = load_settings(EventingSettings)
    run_service("demo", service_settings, lambda: demo_app(service_settings, "demo_proc"))
