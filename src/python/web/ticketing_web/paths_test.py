"""The wrapper over a real Starlette StaticFiles(html=True), as Reflex's prod server
mounts the built pages."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ticketing_web.paths import pages_without_trailing_slash


@pytest.fixture
def client(tmp_path: Path) -> httpx.AsyncClient:
    (tmp_path / "my-tickets").mkdir()
    (tmp_path / "my-tickets" / "index.html").write_text("my tickets page")
    (tmp_path / "index.html").write_text("home page")
    (tmp_path / "404.html").write_text("not found page")

    async def moved(_request: object) -> RedirectResponse:
        return RedirectResponse("/elsewhere")

    async def echo(_request: object) -> PlainTextResponse:
        return PlainTextResponse("posted")

    app = Starlette(
        routes=[
            Route("/moved", moved),
            Route("/form", echo, methods=["POST"]),
            Mount("/", StaticFiles(directory=tmp_path, html=True)),
        ]
    )
    transport = httpx.ASGITransport(app=pages_without_trailing_slash(app))
    return httpx.AsyncClient(transport=transport, base_url="http://web")


async def test_a_page_is_served_at_the_address_asked_for(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/my-tickets?x=1")
    assert response.status_code == 200
    assert response.text == "my tickets page"


async def test_the_unwrapped_server_redirects(tmp_path: Path) -> None:
    """What the wrapper is for: without it, the same request is a redirect."""
    (tmp_path / "my-tickets").mkdir()
    (tmp_path / "my-tickets" / "index.html").write_text("my tickets page")
    app = StaticFiles(directory=tmp_path, html=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
        response = await client.get("/my-tickets")
    assert response.status_code == 307
    assert response.headers["location"] == "http://web/my-tickets/"


async def test_everything_else_is_untouched(client: httpx.AsyncClient) -> None:
    async with client:
        assert (await client.get("/my-tickets/")).text == "my tickets page"
        assert (await client.get("/")).text == "home page"
        head = await client.head("/my-tickets")
        missing = await client.get("/no/such/page")
        other_redirect = await client.get("/moved")
        posted = await client.post("/form")
    assert head.status_code == 200
    assert missing.status_code == 404
    assert missing.text == "not found page"
    assert other_redirect.status_code == 307
    assert other_redirect.headers["location"] == "/elsewhere"
    assert posted.text == "posted"
