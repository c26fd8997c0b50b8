"""Logs: one JSON object per line, naming the service and the request that caused the
line (a process's lines, and the event it handled: tickets/logs_test.py)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from common.app import create_app
from common.context import ServiceContext
from common.settings import ProcessSettings
from testkit.http import app_client
from testkit.logs import json_log_lines

router = APIRouter()


@router.get("/hello")
async def hello() -> dict[str, str]:
    logging.getLogger("logs-test").warning("saying hello")
    return {"hello": "world"}


async def test_a_line_written_while_serving_a_request_carries_its_id():
    with json_log_lines("greeter") as lines:
        app = create_app(
            ServiceContext(name="greeter", settings=ProcessSettings()), routers=[router]
        )
        async with app_client(app) as client:
            response = await client.get("/hello", headers={"X-Request-Id": "req-123"})
            assert response.headers["x-request-id"] == "req-123"
        logging.getLogger("logs-test").warning("after the request")
    [during] = [line for line in lines if line["message"] == "saying hello"]
    assert during["request_id"] == "req-123"
    assert (during["service"], during["level"], during["logger"]) == (
        "greeter",
        "WARNING",
        "logs-test",
    )
    [after] = [line for line in lines if line["message"] == "after the request"]
    assert "request_id" not in after
