"""Fuzz the orders service (a real process, real Mongo-wire server and NATS) through its
OpenAPI, signed in."""

from common.testing.auth import TEST_JWT_KEY, session_cookie
from common.testing.fuzz import fuzz_service


def test_fuzzing_the_openapi_gives_no_5xx_and_only_standard_errors(
    mongo_server, nats_server, tmp_path
):
    env = {
        "MONGO_URI": mongo_server.uri,
        "NATS_URL": nats_server.url,
        "JWT_KEY": TEST_JWT_KEY,
        "COOKIE_SECURE": "false",
    }
    report = fuzz_service(
        "orders", env, tmp_path, examples=250, cookies=session_cookie(TEST_JWT_KEY)
    )
    assert report.requests >= 1000
    assert report.problems == []
