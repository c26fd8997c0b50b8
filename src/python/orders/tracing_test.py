"""One trace across real processes: tickets and orders each run as a service of their own
on a REAL nats-server and MongoDB-wire server, writing their spans to trace files (what
`./run` does). Buying a ticket — a call carrying the caller's `traceparent`, as the web
client's does — is one trace: orders serves the request and publishes order.created,
tickets handles it and publishes ticket.updated, orders handles that. The log lines of
both services name that trace."""

import json
from pathlib import Path

import httpx

import orders.main  # noqa: F401  (the processes below run these)
import tickets.main  # noqa: F401
from harness.servers import ServiceProcess
from stack.traces import by_trace, read_spans, tree
from testkit.auth import session_cookie
from testkit.settings import process_env
from testkit.waiting import eventually

CALLER_TRACE, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_buying_a_ticket_is_one_trace_across_the_services(
    mongo_server, nats_server, tmp_path
):
    traces_dir = tmp_path / "traces"
    env = process_env(mongo_server, nats_server, TRACES_DIR=str(traces_dir), LOG_FORMAT="json")
    services = [
        ServiceProcess("tickets", "tickets.main", env, tmp_path / "tickets").start(),
        ServiceProcess("orders", "orders.main", env, tmp_path / "orders").start(),
    ]
    tickets_process, orders_process = services
    seller, buyer = session_cookie(), session_cookie()
    try:
        async with httpx.AsyncClient(base_url=tickets_process.url, cookies=seller) as client:
            created = await client.post("/api/tickets", json={"title": "Gig", "price": 25})
        ticket_id = created.json()["id"]
        async with httpx.AsyncClient(base_url=orders_process.url, cookies=buyer) as client:
            placed: list[httpx.Response] = []

            async def bought() -> bool:  # 404 until orders has heard of the ticket
                response = await client.post(
                    "/api/orders",
                    json={"ticketId": ticket_id},
                    headers={"traceparent": TRACEPARENT},
                )
                placed.append(response)
                return response.status_code != 404

            await eventually(bought)
        assert placed[-1].status_code == 201, placed[-1].text

        def our_trace() -> list[dict]:
            return by_trace(read_spans(traces_dir)).get(CALLER_TRACE, [])

        # the last hop: orders' replica hears of the reservation
        await eventually(lambda: any(s["name"] == "process ticket.updated" for s in our_trace()))
    finally:
        for process in services:
            process.stop()

    spans = our_trace()

    def the(service: str, name: str, **attributes) -> dict:
        [span] = [
            s
            for s in spans
            if (s["service"], s["name"]) == (service, name)
            and all(s["attributes"].get(k) == v for k, v in attributes.items())
        ]
        return span

    request = the("orders", "POST /api/orders", **{"http.response.status_code": 201})
    order_created = the("orders", "publish order.created")
    reserving = the("tickets", "process order.created")
    ticket_updated = the("tickets", "publish ticket.updated")
    replica_update = the("orders", "process ticket.updated")
    chain = [request, order_created, reserving, ticket_updated, replica_update]
    # each span the child of the one before, the first the caller's
    assert [span["parent_id"] for span in chain] == [CALLER_SPAN] + [
        span["span_id"] for span in chain[:-1]
    ]
    assert [span["kind"] for span in chain] == [
        "SERVER",
        "PRODUCER",
        "CONSUMER",
        "PRODUCER",
        "CONSUMER",
    ]
    assert reserving["links"] == [{"trace_id": CALLER_TRACE, "span_id": order_created["span_id"]}]
    assert reserving["attributes"]["ticketing.outcome"] == "ok"
    # the database work in between is in it too
    assert any(s["service"] == "tickets" and s["name"].endswith(".update") for s in spans)

    # `./run traces <id>` shows that chain nested, in order
    shown = [line.split(" ms  ")[-1] for line in tree(spans).splitlines()]
    depth = {text.strip(): len(text) - len(text.lstrip()) for text in shown}
    names = [f"{span['service']}: {span['name']}" for span in chain]
    keys = [next(k for k in depth if k.startswith(name)) for name in names]
    assert [depth[key] for key in keys] == sorted(depth[key] for key in keys)
    assert len({depth[key] for key in keys}) == len(keys)

    # the log lines the buy caused, in both services, carry its trace id
    [placed_line] = [
        line
        for line in json_lines(orders_process.log_path)
        if line["message"].startswith("order ") and "placed" in line["message"]
    ]
    [reserved_line] = [
        line
        for line in json_lines(tickets_process.log_path)
        if line["message"].startswith(f"ticket {ticket_id} reserved")
    ]
    assert placed_line["trace_id"] == reserved_line["trace_id"] == CALLER_TRACE
    assert placed_line["span_id"] == request["span_id"]
    assert reserved_line["span_id"] == reserving["span_id"]
    assert reserved_line["subject"] == "order.created"
