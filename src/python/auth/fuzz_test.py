"""Fuzz the auth service (a real process, real Mongo-wire server) through its OpenAPI."""

from testkit.auth import TEST_JWT_KEY
from testkit.fuzz import fuzz_service


def test_fuzzing_the_openapi_gives_no_5xx_and_only_standard_errors(
    mongo_server, nats_server, tmp_path
):
    env = {
        "MONGO_URI": mongo_server.uri,
        "NATS_URL": nats_server.url,
        "JWT_KEY": TEST_JWT_KEY,
        "COOKIE_SECURE": "false",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
    }
    report = fuzz_service("auth", env, tmp_path, examples=300)
    assert report.requests >= 1000
    assert report.problems == []
