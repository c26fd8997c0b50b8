import logging
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, BeforeValidator
from pymongo.errors import ServerSelectionTimeoutError

from common.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    ServiceUnavailableError,
    field_error,
    install_error_handlers,
)
from common.middleware import RequestContextMiddleware


def _title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_error("Title is required")
    return value.strip()


class Body(BaseModel):
    title: Annotated[str, BeforeValidator(_title)]
    count: int


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=1000)

    @app.post("/items")
    async def create(body: Body) -> dict:
        return body.model_dump()

    @app.get("/raise/{kind}")
    async def raise_(kind: str) -> dict:
        errors = {
            "bad": BadRequestError("Email in use"),
            "forbidden": ForbiddenError(),
            "missing": NotFoundError(),
            "unavailable": ServiceUnavailableError(),
            "mongo": ServerSelectionTimeoutError("127.0.0.1:1: connection refused"),
            "bug": ZeroDivisionError("secret internals"),
        }
        raise errors[kind]

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.mark.parametrize(
    ("kind", "status", "errors"),
    [
        ("bad", 400, [{"message": "Email in use"}]),
        ("forbidden", 403, [{"message": "Forbidden"}]),
        ("missing", 404, [{"message": "Not Found"}]),
        ("unavailable", 503, [{"message": "Service unavailable, please retry shortly"}]),
        ("mongo", 503, [{"message": "Service unavailable, please retry shortly"}]),
    ],
)
async def test_raised_errors_render_in_the_standard_shape(client, kind, status, errors):
    response = await client.get(f"/raise/{kind}")
    assert response.status_code == status
    assert response.json() == {"errors": errors}


async def test_unexpected_exception_is_500_without_details_and_logged_with_request_id(
    client, caplog
):
    with caplog.at_level(logging.ERROR):
        response = await client.get("/raise/bug", headers={"X-Request-Id": "req-123"})
    assert response.status_code == 500
    assert response.json() == {"errors": [{"message": "Something went wrong"}]}
    assert "secret internals" not in response.text
    record = next(r for r in caplog.records if "unhandled error" in r.getMessage())
    assert "req-123" in record.getMessage()
    assert record.exc_info is not None


async def test_request_id_is_echoed_or_generated(client):
    assert (await client.get("/raise/missing", headers={"X-Request-Id": "abc"})).headers[
        "x-request-id"
    ] == "abc"
    assert len((await client.get("/raise/missing")).headers["x-request-id"]) == 32


async def test_unknown_route_is_404_in_the_standard_shape(client):
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"message": "Not Found"}]}


async def test_wrong_method_is_405_in_the_standard_shape(client):
    response = await client.delete("/items")
    assert response.status_code == 405
    assert response.json() == {"errors": [{"message": "Method Not Allowed"}]}


async def test_field_errors_use_the_validators_own_words(client):
    response = await client.post("/items", json={"title": "   ", "count": 1})
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "Title is required", "field": "title"}]}


async def test_missing_and_mistyped_fields_each_get_an_error_with_field(client):
    response = await client.post("/items", json={"count": "many"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["field"] for e in errors} == {"title", "count"}
    assert {"message": "Title is required", "field": "title"} in errors
    assert all(e["message"] for e in errors)


async def test_non_json_body_is_400_not_422_or_500(client):
    response = await client.post(
        "/items", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "Request body must be valid JSON"}]}


async def test_json_array_instead_of_object_is_400(client):
    response = await client.post("/items", json=["title"])
    assert response.status_code == 400
    assert response.json()["errors"] == [{"message": "Request body must be a JSON object"}]


async def test_missing_body_is_400(client):
    response = await client.post("/items")
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "Request body is required"}]}


async def test_body_over_the_limit_is_413_by_declared_length(client):
    response = await client.post("/items", json={"title": "x" * 2000, "count": 1})
    assert response.status_code == 413
    assert response.json() == {"errors": [{"message": "Request body is too large"}]}


async def test_body_over_the_limit_is_413_when_streamed_without_length(client):
    async def chunks():
        for _ in range(10):
            yield b"x" * 200

    response = await client.post(
        "/items", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"errors": [{"message": "Request body is too large"}]}
