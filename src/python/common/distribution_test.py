"""The `ticketing-common` wheel (`./pants package src/python/common:dist`) as a service
outside this repository gets it: installed alone into a clean venv (pip fetching its
requirements), it publishes an event to a REAL nats-server through its own client
manager, validates one, and reads the contract's JSON Schemas it ships; nothing of the
repository's sources is on its path."""

import asyncio
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from common.events import STREAM_NAME
from testkit.streams import stream_messages

OUTSIDER = """
import asyncio, sys
from common.events import TicketCreatedEvent, publish
from common.nats_client import NatsClientManager

async def main(url):
    manager = NatsClientManager()
    await manager.connect(url, "outsider")
    await manager.ensure_stream()
    event = TicketCreatedEvent(id="t1", version=0, title="From outside", price=5, userId="u1")
    await publish(manager.jetstream, event)
    try:
        TicketCreatedEvent.model_validate_json(b'{"id": "t1", "version": 0}')
    except ValueError as exc:  # pydantic's ValidationError: a payload missing fields
        print("refused:", type(exc).__name__)
    from common.events.registry import committed, problems
    print("schema:", committed("order.cancelled", 2)["$id"], len(problems()))
    await manager.drain()

asyncio.run(main(sys.argv[1]))
"""


def pip_env(home: Path) -> dict[str, str]:
    """pip with no machine-wide config (it may pin other versions), and the host's CA
    bundle where it has one (a proxy's CA may be in it)."""
    env = {"PIP_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin", "HOME": str(home)}
    for bundle in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if bundle and Path(bundle).is_file():
            env["PIP_CERT"] = bundle
            break
    return env


def the_wheel() -> Path:
    [wheel] = Path.cwd().glob("**/ticketing_common-*.whl")
    return wheel


def test_the_wheel_holds_the_runtime_modules_only_and_is_typed():
    names = zipfile.ZipFile(the_wheel()).namelist()
    assert "common/py.typed" in names
    assert (
        "common/outbox/__init__.py" in names
        and "common/outbox/relay.py" in names
        and "common/events/contracts.py" in names
        and "common/events/schemas/order.cancelled/2.json" in names  # the contract's schemas
    )
    assert not [n for n in names if n.endswith("_test.py") or "/testing/" in n or "conftest" in n]
    metadata = next(n for n in names if n.endswith("METADATA"))
    requires = zipfile.ZipFile(the_wheel()).read(metadata).decode()
    assert "Requires-Dist: nats-py" in requires and "Requires-Dist: pydantic" in requires


async def test_a_service_outside_the_repo_publishes_and_validates_with_it(
    tmp_path, nats_manager, nats_server
):
    venv = tmp_path / "venv"
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = await asyncio.to_thread(
        subprocess.run,
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(the_wheel()),
        ],
        env=pip_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    script = tmp_path / "outsider.py"
    script.write_text(OUTSIDER)
    run = await asyncio.to_thread(
        subprocess.run,
        [str(python), str(script), nats_server.url],
        cwd=tmp_path,  # not the repository: only the installed wheel can be imported
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[:2] == ["refused: ValidationError", "schema: order.cancelled/2 0"]
    [message] = await stream_messages(nats_manager.jetstream)
    assert message.headers["Nats-Msg-Id"] == "ticket.created:t1:0"
    assert message.headers["Ticketing-Schema"] == "ticket.created/1"
    assert json.loads(message.data)["title"] == "From outside"
    assert (await nats_manager.jetstream.stream_info(STREAM_NAME)).state.messages == 1
