"""The cache rules over a real Starlette StaticFiles(html=True), as Reflex's prod server
mounts the built frontend."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ticketing_web.caching import cache_by_kind


@pytest.fixture
def client(tmp_path: Path) -> httpx.AsyncClient:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "root-B1a2c3.js").write_text("code")
    (tmp_path / "index.html").write_text("<html>home</html>")

    async def ping(_request: object) -> JSONResponse:
        return JSONResponse(True)

    async def private(_request: object) -> Response:
        return Response(
            "<html>mine</html>", media_type="text/html", headers={"Cache-Control": "private"}
        )

    app = Starlette(
        routes=[
            Route("/ping", ping),
            Route("/private", private),
            Mount("/", StaticFiles(directory=tmp_path, html=True)),
        ]
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cache_by_kind(app)), base_url="http://web"
    )


async def test_built_files_are_kept_and_pages_checked_each_time(client: httpx.AsyncClient) -> None:
    async with client:
        code = await client.get("/assets/root-B1a2c3.js")
        page = await client.get("/")
        again = await client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert code.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert page.headers["cache-control"] == "no-cache"
    assert again.status_code == 304  # checked, not sent again


async def test_what_is_not_a_built_file_or_a_page_is_left_alone(client: httpx.AsyncClient) -> None:
    async with client:
        gone = await client.get("/assets/root-OLD.js")  # a file of another build
        ping = await client.get("/ping")
        private = await client.get("/private")
    assert gone.status_code == 404 and "max-age" not in gone.headers.get("cache-control", "")
    assert "cache-control" not in ping.headers
    assert private.headers.get_list("cache-control") == ["private"]
