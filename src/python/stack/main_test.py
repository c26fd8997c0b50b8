"""The one-command local stack as a black box: up, a flow through the one address (and
the README's curl walk-through, as written), SIGTERM → everything gone, restart → the
data is still there."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nats
import pytest

from common.events import STREAM_NAME
from harness.servers import free_port, python_path
from stack.readme_walk import walk_the_readme
from testkit.streams import stream_messages
from testkit.waiting import eventually
from ticketing_web.launcher import copy_app, group_members, processes

UP = "Ticketing is up at"


def start_stack(
    state: Path, app: Path, port: int, *options: str
) -> tuple[subprocess.Popen[str], str]:
    argv = ["--port", str(port), "--state-dir", str(state), *options]
    process = subprocess.Popen(
        [sys.executable, "-m", "stack.main", *argv],
        env={**os.environ, "PYTHONPATH": python_path(), "WEB_APP_DIR": str(app)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    for line in process.stdout:  # bounded by the test timeout; the stack prints as it goes
        output.append(line)
        if line.startswith(UP):
            for _ in range(12 + len(options)):  # the table (an option: a row more)
                output.append(process.stdout.readline())
            return process, "".join(output)
        if line.startswith("stack: ") and "building" not in line:
            break
    raise AssertionError(f"the stack did not come up (exit {process.wait()}):\n{''.join(output)}")


def child_groups(pid: int) -> set[int]:
    """Process groups of `pid`'s children (each child runs in a session of its own)."""
    return {pgrp for _child, parent, pgrp in processes() if parent == pid}


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def stop_stack(process: subprocess.Popen[str]) -> tuple[int, str]:
    groups = child_groups(process.pid)
    process.send_signal(signal.SIGTERM)
    code = process.wait(120)
    rest = process.stdout.read()
    process.stdout.close()
    assert groups, "the stack had no child processes?"
    assert [g for g in groups if group_alive(g)] == [], "child processes left running"
    return code, rest


@pytest.mark.parametrize(
    "options", [(), ("--stripe-local",)], ids=["test provider", "stripe local"]
)
async def test_one_command_runs_the_system_and_stops_cleanly(tmp_path, options):
    """...and a purchase through it is paid, audited and reconciled — with the test
    provider, or (`--stripe-local`) through the Stripe path against a local server."""
    state, app, port = tmp_path / "state", copy_app(tmp_path / "web-app"), free_port()
    gateway = f"http://127.0.0.1:{port}"

    process, table = start_stack(state, app, port, *options)
    try:
        nats_url = re.search(r"nats\s+(nats://\S+)", table).group(1)
        services = ("auth", "tickets", "orders", "expiration", "payments")
        stripe = ("stripe",) if options else ()
        for name in ("nats", "mongo", *stripe, *services, "web", "gateway"):
            assert re.search(rf"^\s+{name}\s+\S+\s+\S+\.log$", table, re.M), table
        async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
            signup = await client.post(
                "/api/users/signup", json={"email": "local@test.com", "password": "secret1"}
            )
            assert signup.status_code == 201
            assert "session" in client.cookies
            created = await client.post("/api/tickets", json={"title": "Local", "price": 9.5})
            assert created.status_code == 201
            ticket = created.json()
            assert ticket in (await client.get("/api/tickets")).json()
            home = await client.get("/")
            assert home.status_code == 200 and "<html" in home.text
        async with httpx.AsyncClient(base_url=gateway, timeout=30) as buyer:
            await buyer.post(
                "/api/users/signup", json={"email": "buyer@test.com", "password": "secret1"}
            )
            bought: list[httpx.Response] = []

            async def ordered() -> bool:  # 404 until orders has heard of the ticket
                bought[:] = [await buyer.post("/api/orders", json={"ticketId": ticket["id"]})]
                return bought[0].status_code != 404

            await eventually(ordered)
            assert bought[0].status_code == 201, bought[0].text
            assert (await buyer.get("/api/orders")).json()[0]["ticket"]["id"] == ticket["id"]

            async def reserved() -> bool:  # tickets heard order.created
                shown = await buyer.get(f"/api/tickets/{ticket['id']}")
                return shown.json().get("orderId") == bought[0].json()["id"]

            await eventually(reserved)
            paid = await buyer.post(
                "/api/payments", json={"orderId": bought[0].json()["id"], "token": "tok_visa"}
            )
            assert paid.status_code == 201, paid.text

            async def complete() -> bool:  # orders accepted the authorization
                order = await buyer.get(f"/api/orders/{bought[0].json()['id']}")
                return order.json()["status"] == "complete"

            await eventually(complete)
            await eventually(lambda: _sold(buyer, ticket["id"]))
        await eventually(lambda: _audit_says(state, "no violation"))
        agreed = "our payments 1, the provider's charges 1: the books agree"
        await eventually(lambda: _run_says(state, "reconcile", agreed, "--grace-seconds", "0"))
        nc = await nats.connect(nats_url)
        message = await nc.jetstream().get_last_msg(STREAM_NAME, "ticket.created")
        await nc.close()
        assert json.loads(message.data)["id"] == ticket["id"]
        if not options:  # the README's curl walk-through, as written, then its last line
            assert await walk_the_readme(gateway, tmp_path) == 11
            await eventually(lambda: _audit_says(state, "no violation"))
            # the walk's payment is younger than the grace: said, not compared yet
            assert _run_says(state, "reconcile", "the books agree")
            assert _run_says(state, "reconcile", "payment(s) younger than 120 s left out")
    finally:
        code, rest = stop_stack(process)
    assert code == 0
    assert "stack: stopped" in rest

    # restart on the same state: the user and the ticket are still there
    process, table = start_stack(state, app, port)
    try:
        async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
            signin = await client.post(
                "/api/users/signin", json={"email": "local@test.com", "password": "secret1"}
            )
            assert signin.status_code == 200
            # reserved by the buyer's order: no longer listed, but there
            assert (await client.get("/api/tickets")).json() == []
            assert (await client.get(f"/api/tickets/{ticket['id']}")).json()["orderId"]
            await crash_tickets_under_load(process, client, table)
            said = await kill_the_web_client(process, client)
    finally:
        code, rest = stop_stack(process)
    assert code == 0
    said += rest
    assert "stack: tickets exited (code -9); starting it again in 1 s" in said
    assert "stack: tickets is running again" in said
    assert said.count("stack: web exited (code -9)") == 2, said
    # built once, on the stack's first start: its restart and the web client's two
    # restarts served that build
    web_log = (state / "web" / "web.log").read_text()
    assert web_log.count("web: building the frontend") == 1, web_log[-3000:]


async def kill_the_web_client(stack: subprocess.Popen[str], client: httpx.AsyncClient) -> str:
    """SIGKILL the web launcher alone (its Reflex server lives on a moment, holding the
    port), then the Reflex server alone (its launcher exits): ./run starts the web
    client again each time, killing what was left of it first, and the page comes
    back with the same frontend files (no rebuild: open tabs keep working). Returns
    what the stack said meanwhile."""
    assets = await _page_assets(client)
    said = []
    for victim in (b"ticketing_web.launcher", b"ticketing_web.serve_built"):
        [group] = [g for g in child_groups(stack.pid) if b"ticketing_web.launcher" in _cmdline(g)]
        pid = min(p for p in group_members(group) if victim in _cmdline(p))
        os.kill(pid, signal.SIGKILL)
        said += await asyncio.wait_for(_lines_until(stack, "stack: web is running again"), 90)
        assert not group_alive(group)
        assert await _page_assets(client) == assets
    return "".join(said)


async def _lines_until(stack: subprocess.Popen[str], last: str) -> list[str]:
    lines = []
    while not lines or last not in lines[-1]:
        lines.append(await asyncio.to_thread(stack.stdout.readline))
        assert lines[-1], "the stack stopped"
    return lines


async def _page_assets(client: httpx.AsyncClient) -> set[str]:
    """The frontend files the landing page names (they change with each build)."""
    page = await client.get("/")
    assert page.status_code == 200, page.status_code
    return set(re.findall(r"/assets/[\w.-]+\.js", page.text))


async def crash_tickets_under_load(
    stack: subprocess.Popen[str], client: httpx.AsyncClient, table: str
) -> None:
    """SIGKILL the tickets service while 4 clients create tickets: ./run starts it again
    (same port, behind the same gateway), and every create that was acknowledged (201)
    has its ticket.created on the stream — what the crash left unsent, the restarted
    service's outbox takes over from the dead process's writer row."""
    [group] = [g for g in child_groups(stack.pid) if b"tickets.main" in _cmdline(g)]
    acknowledged: list[str] = []
    crashed = asyncio.Event()

    async def creating() -> None:
        served_after_crash = 0
        deadline = asyncio.get_running_loop().time() + 120
        while served_after_crash < 5:  # until the restarted service has served it a few
            assert asyncio.get_running_loop().time() < deadline, "tickets never came back"
            try:
                response = await client.post("/api/tickets", json={"title": "c", "price": 3})
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 201:
                acknowledged.append(response.json()["id"])
                served_after_crash += crashed.is_set()
            else:
                await asyncio.sleep(0.05)  # the gateway's 502 while tickets is down

    async def crash() -> None:
        await eventually(lambda: len(acknowledged) >= 20)
        os.killpg(group, signal.SIGKILL)
        crashed.set()

    await asyncio.gather(crash(), *(creating() for _ in range(4)))
    assert crashed.is_set()
    nats_url = re.search(r"nats\s+(nats://\S+)", table).group(1)
    nc = await nats.connect(nats_url)
    try:

        async def all_sent() -> bool:
            sent = {
                json.loads(m.data)["id"]
                for m in await stream_messages(nc.jetstream(), "ticket.created")
            }
            return set(acknowledged) <= sent

        await eventually(all_sent, within=60)
    finally:
        await nc.close()


async def _sold(client: httpx.AsyncClient, ticket_id: str) -> bool:
    return (await client.get(f"/api/tickets/{ticket_id}")).json()["status"] == "sold"


def _audit_says(state: Path, verdict: str) -> bool:
    """`./run audit` beside the running stack: it finds the stack's NATS itself."""
    return _run_says(state, "audit", verdict)


def _run_says(state: Path, command: str, verdict: str, *options: str) -> bool:
    """`./run <command>` (audit, reconcile) beside the running stack, which it finds by
    itself: exit 0 and `verdict` in what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "stack.main", command, "--state-dir", str(state), *options],
        env={**os.environ, "PYTHONPATH": python_path()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr
    print(done.stdout)  # (shown if the test fails)
    return done.returncode == 0 and verdict in done.stdout


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


async def test_a_port_in_use_is_named_and_nothing_is_left_running(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "stack.main",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path),
            env={**os.environ, "PYTHONPATH": python_path()},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output = (await process.communicate())[0].decode()
    assert process.returncode == 1
    assert f"port {port} (gateway) is already in use" in output
    assert "stack: stopped" in output
