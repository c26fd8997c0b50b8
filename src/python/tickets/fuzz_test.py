"""Fuzz the tickets service (a real process, real servers) through its OpenAPI."""

import json

from common.testing.auth import TEST_JWT_KEY, session_cookie
from common.testing.fuzz import fuzz_openapi
from harness.servers import ServiceProcess


def test_fuzzing_the_openapi_gives_no_5xx_and_only_standard_errors(
    mongo_server, nats_server, tmp_path
):
    with ServiceProcess(
        "tickets",
        "tickets.main",
        {
            "MONGO_URI": mongo_server.uri,
            "NATS_URL": nats_server.url,
            "JWT_KEY": TEST_JWT_KEY,
            "COOKIE_SECURE": "false",
        },
        tmp_path,
    ) as service:
        report = fuzz_openapi(service.url, examples=150, cookies=session_cookie(TEST_JWT_KEY))
    print(
        "\nRELIABILITY fuzz-tickets "
        + json.dumps(
            {"requests": report.requests, "5xx": report.server_errors, "statuses": report.statuses}
        )
    )
    assert report.requests >= 1000
    assert report.problems == []
