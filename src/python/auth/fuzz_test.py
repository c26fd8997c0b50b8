"""Fuzz the auth service (a real process, real Mongo-wire server) through its OpenAPI."""

import json

from common.testing.auth import TEST_JWT_KEY
from common.testing.fuzz import fuzz_openapi
from harness.servers import ServiceProcess


def test_fuzzing_the_openapi_gives_no_5xx_and_only_standard_errors(mongo_server, tmp_path):
    with ServiceProcess(
        "auth",
        "auth.main",
        {
            "MONGO_URI": mongo_server.uri,
            "JWT_KEY": TEST_JWT_KEY,
            "COOKIE_SECURE": "false",
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "1024",
        },
        tmp_path,
    ) as service:
        report = fuzz_openapi(service.url, examples=300)
    print(
        "\nRELIABILITY fuzz-auth "
        + json.dumps(
            {"requests": report.requests, "5xx": report.server_errors, "statuses": report.statuses}
        )
    )
    assert report.requests >= 1000
    assert report.problems == []
