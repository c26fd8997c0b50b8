"""Two releases of a service side by side, as a rolling update has them: the previous
release's orders and payments (an earlier commit's code) beside this one's, on one
stream and one database, and buyers trading through both (`scenario.trade`)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from nats.js.client import JetStreamContext

from common.events import STREAM_NAME
from contract.fleet import Fleet, source_tree
from contract.scenario import PAID, Deal, sign_out, trade
from testkit.waiting import eventually

# The last commit before event versions: its orders publishes order.cancelled version 1.
PREVIOUS_RELEASE = "f42208e5562e693223d92c48199bc8d961dfe391"
ROUNDS = 12  # 6 paid, 3 cancelled by the buyer, 3 expired: through each release in turn


def two_releases(mongo_uri: str, nats_url: str, workdir: Path) -> Fleet:
    """The fleet, started: orders and payments twice (ROLLING_FROM's code, or the
    previous release's, and this checkout's), the other services once."""
    previous = source_tree(os.environ.get("ROLLING_FROM") or PREVIOUS_RELEASE, workdir)
    fleet = Fleet(mongo_uri, nats_url, workdir, env={"ORDER_EXPIRATION_SECONDS": "12"})
    try:
        return fleet.start({"orders": [previous, None], "payments": [previous, None]})
    except BaseException:
        fleet.stop()
        raise


async def trade_through_both(fleet: Fleet, js: JetStreamContext, tag: str) -> list[Deal]:
    """Buyers trade through both releases; returns once every order ended as its buyer
    meant (paid and captured, or cancelled), every buyer signed out, and every durable
    consumer on the stream has acknowledged everything."""
    try:
        deals = await trade(fleet, ROUNDS, tag)
    except AssertionError:
        print(fleet.tails())
        raise

    not_yet: list[str] = []

    async def ended_as_meant() -> bool:
        not_yet.clear()
        async with httpx.AsyncClient(timeout=10) as client:
            for deal in deals:
                url = f"{fleet.url('orders', 1)}/api/orders/{deal.order_id}"  # this release
                order = (await client.get(url, cookies=deal.buyer)).json()
                wanted = ("complete", "captured") if deal.ending == PAID else ("cancelled", None)
                if (order.get("status"), order.get("payment")) != wanted:
                    not_yet.append(f"{deal.order_id} meant {wanted}: {order}")
        return not not_yet

    try:
        await eventually(ended_as_meant, within=90)
    except AssertionError:
        print("not ended as meant:", *not_yet, fleet.tails(), sep="\n")
        raise
    await sign_out(fleet, deals)
    await eventually(lambda: drained(js), within=60)
    return deals


async def drained(js: JetStreamContext) -> bool:
    consumers = await js.consumers_info(STREAM_NAME)
    return all(c.num_pending == 0 and c.num_ack_pending == 0 for c in consumers)
