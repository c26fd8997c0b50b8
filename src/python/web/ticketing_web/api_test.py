"""The web client's service calls with HTTP faked (httpx.MockTransport)."""

import json

import httpx
import pytest

from ticketing_web import api
from ticketing_web.api import (
    UNAVAILABLE,
    UNEXPECTED,
    ApiResult,
    Services,
    price_for_api,
    read_errors,
    session_from_cookie_header,
)
from ticketing_web.browser import local_path, post_json
from ticketing_web.settings import WebSettings

SETTINGS = WebSettings(
    auth_url="http://auth",
    tickets_url="http://tickets",
    orders_url="http://orders",
    payments_url="http://payments",
    api_timeout=1,
)
ORDER_ID = "0123456789abcdef01234567"


@pytest.fixture
def fake_http(monkeypatch):
    """Route every call to `handler`; record the requests."""
    seen: list[httpx.Request] = []
    state = {"handler": lambda request: httpx.Response(200, json={})}

    def dispatch(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return state["handler"](request)

    monkeypatch.setattr(api, "transport", httpx.MockTransport(dispatch))
    api.reset_client()

    def use(handler):
        state["handler"] = handler
        return seen

    yield use
    api.reset_client()


async def test_session_cookie_is_forwarded_to_the_service(fake_http):
    seen = fake_http(lambda r: httpx.Response(200, json={"currentUser": None}))
    await Services(SETTINGS).current_user("abc123=")
    assert seen[0].url == "http://auth/api/users/currentuser"
    assert seen[0].headers["cookie"] == "session=abc123="


async def test_no_cookie_header_without_a_session(fake_http):
    seen = fake_http(lambda r: httpx.Response(200, json=[]))
    await Services(SETTINGS).list_tickets()
    assert "cookie" not in seen[0].headers


async def test_one_client_for_every_call_and_it_never_keeps_a_cookie(fake_http):
    """A session set by one answer must never ride along on another user's call."""
    seen = fake_http(
        lambda r: httpx.Response(
            200,
            json={"currentUser": None},
            headers={"set-cookie": "session=theirs; Path=/; HttpOnly"},
        )
    )
    services = Services(SETTINGS)
    await services.current_user("mine")
    first = api.client()
    await services.list_tickets()
    assert api.client() is first
    assert seen[0].headers["cookie"] == "session=mine"
    assert "cookie" not in seen[1].headers


async def test_order_and_payment_calls(fake_http):
    seen = fake_http(lambda r: httpx.Response(201, json={"id": ORDER_ID}))
    services = Services(SETTINGS)
    assert (await services.create_order("s", "t" * 24)).ok
    assert (await services.pay("s", ORDER_ID, "tok_visa")).ok
    assert (await services.get_order("s", ORDER_ID)).ok
    assert (await services.list_orders("s")).ok
    assert [(r.method, str(r.url)) for r in seen] == [
        ("POST", "http://orders/api/orders"),
        ("POST", "http://payments/api/payments"),
        ("GET", f"http://orders/api/orders/{ORDER_ID}"),
        ("GET", "http://orders/api/orders"),
    ]
    assert json.loads(seen[0].content) == {"ticketId": "t" * 24}
    assert json.loads(seen[1].content) == {"orderId": ORDER_ID, "token": "tok_visa"}
    assert all(r.headers["cookie"] == "session=s" for r in seen)


async def test_a_purchase_carries_its_key_so_a_resend_places_one_order(fake_http):
    """The key the tab noted goes as the Idempotency-Key, on every retry of the call;
    no key, no header (a purchase from an old tab)."""
    seen = fake_http(lambda r: httpx.Response(201, json={"id": ORDER_ID}))
    await Services(SETTINGS).create_order("s", "t" * 24, "k" * 32)
    await Services(SETTINGS).create_order("s", "t" * 24)
    assert seen[0].headers["idempotency-key"] == "k" * 32
    assert "idempotency-key" not in seen[1].headers


async def test_an_order_for_a_ticket_orders_has_not_heard_of_yet_is_retried(fake_http, monkeypatch):
    monkeypatch.setattr(api, "ORDER_404_DELAY", 0)
    answers = iter([404, 404, 201])
    seen = fake_http(lambda r: httpx.Response(next(answers), json={"id": ORDER_ID}))
    assert (await Services(SETTINGS).create_order("s", "t" * 24)).status == 201
    assert len(seen) == 3
    fake_http(lambda r: httpx.Response(404, json={"errors": [{"message": "Ticket not found"}]}))
    result = await Services(SETTINGS).create_order("s", "t" * 24)
    assert result.errors == ["Ticket not found"]
    assert len(seen) == 3 + api.ORDER_404_RETRIES


@pytest.mark.parametrize("bad_id", ["", "abc", "../users/currentuser", "0" * 23 + "?", "0" * 25])
async def test_a_deep_link_id_that_is_not_an_id_never_reaches_a_service(fake_http, bad_id):
    seen = fake_http(lambda r: httpx.Response(200, json={}))
    services = Services(SETTINGS)
    assert (await services.get_order("s", bad_id)).status == 404
    assert (await services.get_ticket(bad_id)).status == 404
    assert (await services.update_ticket("s", bad_id, "t", "1")).status == 404
    assert seen == []


@pytest.mark.parametrize(
    ("header", "session"),
    [
        ("session=abc123=", "abc123="),
        ("other=1; session=eyJqd3QiOiJ4In0=; x=y", "eyJqd3QiOiJ4In0="),
        ('session="quoted"', "quoted"),
        ("", ""),
        ("sessionx=1; xsession=2", ""),
        ("session=", ""),
        ("garbage;;;===", ""),
        ("session=" + "a" * 5000, ""),
    ],
)
def test_session_from_cookie_header(header, session):
    assert session_from_cookie_header(header) == session


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("/tickets/abc", "/tickets/abc"),
        ("/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("javascript:alert(1)", "/"),
        (None, "/"),
        ("/a\nb", "/"),
    ],
)
def test_next_links_stay_on_this_site(value, path):
    assert local_path(value) == path


def test_browser_posts_are_same_origin_and_escape_their_body():
    script = post_json("/api/users/signin", {"email": "a'b\"c@d.e", "password": "</script>"})
    assert script.startswith('fetch("/api/users/signin"')
    assert "credentials: 'same-origin'" in script
    # the body is a JSON string inside a JS string literal: quotes cannot end it early
    literal = script.split("body: ", 1)[1].split("})", 1)[0]
    assert json.loads(json.loads(literal)) == {"email": "a'b\"c@d.e", "password": "</script>"}


def test_a_browser_call_that_got_no_answer_is_unavailable():
    assert ApiResult.from_response(0, None).errors == [UNAVAILABLE]


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
    fake_http(lambda r: httpx.Response(400, json={"errors": [{"message": "Ticket is reserved"}]}))
    result = await Services(SETTINGS).create_order("s", "t" * 24)
    assert result.field_errors == {}
    assert result.errors == ["Ticket is reserved"]


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
