"""The tickets service as a process on REAL servers logs one JSON object per line (uvicorn's
lines too), and a line written while handling an event names its subject and id."""

from __future__ import annotations

import json

import tickets.main  # noqa: F401  (the process below runs it)
from common.events import STREAM_NAME
from harness.servers import ServiceProcess
from testkit.settings import process_env
from testkit.waiting import eventually


async def test_a_service_process_logs_json_lines_naming_the_event_it_handled(
    mongo_server, nats_server, nats_manager, tmp_path
):
    tickets = ServiceProcess(
        "tickets",
        "tickets.main",
        process_env(mongo_server, nats_server),
        tmp_path,
    ).start()
    try:
        # an order.created tickets cannot read: its listener logs and terminates it
        ack = await nats_manager.jetstream.publish(
            "order.created", b"{not json", headers={"Nats-Msg-Id": "order.created:bad:0"}
        )
        assert ack.stream == STREAM_NAME

        def lines() -> list[dict]:
            return [json.loads(line) for line in tickets.log_path.read_text().splitlines()]

        await eventually(lambda: any("invalid payload" in line["message"] for line in lines()))
    finally:
        tickets.stop()
    logged = lines()  # every line parses: uvicorn's own too
    assert {line["service"] for line in logged} == {"tickets"}
    assert any(line["message"].startswith("Uvicorn running on") for line in logged)
    [invalid] = [line for line in logged if "invalid payload" in line["message"]]
    assert (invalid["level"], invalid["subject"], invalid["msg_id"]) == (
        "ERROR",
        "order.created",
        "order.created:bad:0",
    )
