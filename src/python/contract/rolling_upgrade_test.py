"""A rolling upgrade, proven: the previous release and this one of orders and of payments
run at once — two processes of each, one from each release's code — on one stream and
one database, while buyers buy, pay, cancel and let orders expire through both. The
previous release publishes `order.cancelled` version 1 (no header, no reason) and reads
version 2 ignoring what it adds; this one publishes version 2 and reads version 1
through its upcaster. Every order ends as its buyer meant it, every consumer drains, no
delivery is given up on, and the auditor finds nothing on the stream.

Point it at any earlier commit, a `src/python` directory, or an earlier release's
wheels (orders', payments' and the ticketing-common they were built with, `:`-separated):
    ROLLING_FROM=<commit> ./pants test src/python/contract/rolling_upgrade_test.py
"""

from __future__ import annotations

import asyncio

import pytest

from common.audit import audit
from contract.fleet import Fleet
from contract.rolling import ROUNDS, trade_through_both, two_releases
from testkit.streams import stream_messages


@pytest.fixture
def fleet(mongo_server, nats_server, nats_manager, tmp_path):
    started = two_releases(mongo_server.uri, nats_server.url, tmp_path)
    yield started
    started.stop()


async def test_two_releases_of_a_consumer_share_one_stream_and_nothing_is_lost(
    fleet: Fleet, nats_manager
):
    js = nats_manager.jetstream
    await trade_through_both(fleet, js, "rolling")
    cancelled = await stream_messages(js, "order.cancelled")
    versions = {(m.headers or {}).get("Ticketing-Schema") for m in cancelled}
    assert versions == {None, "order.cancelled/2"}, versions  # both releases published
    assert await asyncio.to_thread(fleet.failed_deliveries) == 0
    assert fleet.logged(r"terminated|poison") == []
    report = await audit(js)
    assert report.clean, report.text()
    assert report.orders >= ROUNDS
