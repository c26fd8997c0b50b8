"""The local gateway (real Caddy) in front of upstreams that do not answer: a browser
gets a page that retries by itself, an API client the services' error shape — never a
raw 502."""

from __future__ import annotations

import httpx

from harness.gateway import CaddyGateway
from harness.servers import LOOPBACK, free_port

ROUTES = ("AUTH", "TICKETS", "ORDERS", "PAYMENTS", "WEB")


async def test_a_page_asked_while_nothing_answers_retries_by_itself_and_an_api_call_gets_json(
    tmp_path,
):
    nobody = f"{LOOPBACK}:{free_port()}"  # a port nothing listens on
    gateway = CaddyGateway(
        tmp_path, free_port(), {f"{name}_UPSTREAM": nobody for name in ROUTES}
    ).start()
    try:
        # the web route waits up to 3 s for a web process before it answers so
        async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:  # type: ignore[attr-defined]
            page = await client.get("/tickets/abc", headers={"Accept": "text/html"})
            assert page.status_code == 503
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["retry-after"] == "2"
            assert "Back in a moment" in page.text
            assert '<meta http-equiv="refresh" content="2">' in page.text
            for path in ("/api/tickets", "/api/users/currentuser", "/api/orders/x"):
                api = await client.get(path)
                assert api.status_code == 503, path
                assert api.json() == {
                    "errors": [{"message": "Service unavailable, please retry shortly"}]
                }
                assert api.headers["retry-after"] == "2"
    finally:
        gateway.stop()
