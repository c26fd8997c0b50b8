"""The web client's service calls with HTTP faked (httpx.MockTransport)."""

import json

import httpx
import pytest

from ticketing_web import api
from ticketing_web.api import (
    UNAVAILABLE,
    UNEXPECTED,
    Services,
    format_money,
    price_for_api,
    read_errors,
)
from ticketing_web.settings import WebSettings

SETTINGS = WebSettings(
    auth_url="http://auth", tickets_url="http://tickets", api_timeout=1, cookie_secure=False
)


@pytest.fixture
def fake_http(monkeypatch):
    """Route every call to `handler`; record the requests."""
    seen: list[httpx.Request] = []
    state = {"handler": lambda request: httpx.Response(200, json={})}

    def dispatch(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return state["handler"](request)

    monkeypatch.setattr(api, "transport", httpx.MockTransport(dispatch))

    def use(handler):
        state["handler"] = handler
        return seen

    return use


async def test_session_cookie_is_forwarded_to_the_service(fake_http):
    seen = fake_http(lambda r: httpx.Response(200, json={"currentUser": None}))
    await Services(SETTINGS).current_user("abc123=")
    assert seen[0].url == "http://auth/api/users/currentuser"
    assert seen[0].headers["cookie"] == "session=abc123="


async def test_no_cookie_header_without_a_session(fake_http):
    seen = fake_http(lambda r: httpx.Response(200, json=[]))
    await Services(SETTINGS).list_tickets()
    assert "cookie" not in seen[0].headers


async def test_a_new_session_cookie_from_the_service_is_picked_up(fake_http):
    fake_http(
        lambda r: httpx.Response(
            201,
            json={"id": "u1", "email": "a@b.c"},
            headers={"set-cookie": "session=eyJqd3QiOiJ4In0=; Path=/; HttpOnly; SameSite=lax"},
        )
    )
    result = await Services(SETTINGS).signup("a@b.c", "secret")
    assert result.ok
    assert result.session == "eyJqd3QiOiJ4In0="
    assert result.data == {"id": "u1", "email": "a@b.c"}


async def test_validation_errors_map_to_fields_in_the_apis_words(fake_http):
    seen = fake_http(
        lambda r: httpx.Response(
            400,
            json={
                "errors": [
                    {"message": "Title is required", "field": "title"},
                    {"message": "Price must be greater than 0", "field": "price"},
                ]
            },
        )
    )
    result = await Services(SETTINGS).create_ticket("s", "", "-1")
    assert json.loads(seen[0].content) == {"title": "", "price": -1}
    assert not result.ok
    assert result.field_errors == {
        "title": "Title is required",
        "price": "Price must be greater than 0",
    }
    assert result.errors == []


async def test_errors_without_a_field_are_general(fake_http):
    fake_http(lambda r: httpx.Response(400, json={"errors": [{"message": "Email in use"}]}))
    result = await Services(SETTINGS).signup("a@b.c", "secret")
    assert result.field_errors == {}
    assert result.errors == ["Email in use"]


async def test_a_service_that_cannot_be_reached_is_unavailable_not_a_crash(fake_http):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    fake_http(refuse)
    result = await Services(SETTINGS).list_tickets()
    assert result.unavailable
    assert result.errors == [UNAVAILABLE]


async def test_503_is_unavailable_and_odd_bodies_are_unexpected(fake_http):
    fake_http(lambda r: httpx.Response(503, json={"errors": [{"message": "down"}]}))
    assert (await Services(SETTINGS).list_tickets()).errors == [UNAVAILABLE]
    fake_http(lambda r: httpx.Response(500, text="<html>oops</html>"))
    result = await Services(SETTINGS).list_tickets()
    assert not result.unavailable
    assert result.errors == [UNEXPECTED]


def test_read_errors_ignores_malformed_items():
    body = {
        "errors": [
            {"message": "A", "field": "a"},
            {"message": "B", "field": "a"},
            "junk",
            {"field": "x"},
            {"message": "C"},
        ]
    }
    assert read_errors(body) == ({"a": "A"}, ["C"])
    assert read_errors(["not", "a", "dict"]) == ({}, [])


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("25", 25),
        ("19.99", 19.99),
        (" 30.5 ", 30.5),
        ("-1", -1),
        ("abc", "abc"),
        ("", ""),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
    ],
)
def test_price_for_api(text, sent):
    assert price_for_api(text) == sent


def test_format_money():
    assert format_money(25) == "$25.00"
    assert format_money(1234.5) == "$1,234.50"
    assert format_money(None) == "None"
