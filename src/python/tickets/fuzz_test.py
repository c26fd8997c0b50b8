"""Fuzz the tickets service (a real process, real Mongo-wire server and NATS) through its
OpenAPI, signed in."""

from testkit.fuzz import fuzz_eventing_service


def test_fuzzing_the_openapi_gives_no_5xx_and_only_standard_errors(
    mongo_server, nats_server, tmp_path
):
    report = fuzz_eventing_service("tickets", mongo_server, nats_server, tmp_path, examples=150)
    assert report.requests >= 1000
    assert report.problems == []
