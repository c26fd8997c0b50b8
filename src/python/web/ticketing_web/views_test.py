"""What the pages show, from what the services answer (no Reflex, no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketing_web.api import ApiResult
from ticketing_web.views import (
    checked_search,
    first_error,
    format_money,
    my_ticket_view,
    order_view,
    price_for_form,
    price_problem,
    search_url,
    seconds_left,
    ticket_view,
    time_left,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_money_is_shown_and_entered_with_its_cents():
    assert format_money(30.5) == "$30.50"
    assert format_money(1234) == "$1,234.00"
    assert price_for_form(30.5) == "30.50"
    assert price_problem("abc") == "Price must be a number"
    assert price_problem("30.50") == ""


def test_a_ticket_reads_as_its_status():
    view = ticket_view({"id": "t1", "title": "Jazz", "price": 30.5, "userId": "u"})
    assert view == {
        "id": "t1",
        "title": "Jazz",
        "price": "$30.50",
        "userId": "u",
        "status": "available",
    }


def test_the_countdown_rounds_up_and_stops_at_zero():
    assert seconds_left(100.2, now=90.0) == 11
    assert seconds_left(90.0, now=100.0) == 0
    assert time_left(75) == "1:15"
    assert time_left(9) == "0:09"


def test_an_unpaid_order_counts_down_then_reads_expired():
    order = {
        "id": "o1",
        "status": "created",
        "expiresAt": iso(NOW + timedelta(seconds=83)),
        "ticket": {"id": "t1", "title": "Jazz", "price": 20},
    }
    now = NOW.timestamp()
    assert order_view(order, now)["status_text"] == "awaiting payment, 1:23 left"
    assert order_view(order, now + 83)["status_text"] == "expired"
    paid = order_view({**order, "status": "complete", "payment": "captured"}, now)
    assert (paid["status_text"], paid["payment"], paid["price"]) == (
        "paid",  # the buyer's word, not the API's "complete"
        "captured",
        "$20.00",
    )


def test_a_malformed_order_shows_what_it_can():
    view = order_view({"status": "created", "expiresAt": "not a time", "ticket": "?"})
    assert view["status_text"] == "expired"  # no deadline: nothing left to wait for
    assert view["title"] == ""


def test_a_sellers_ticket_says_what_became_of_it_and_why_it_cannot_be_edited():
    now = NOW.timestamp()
    reserved = {
        "price": 10,
        "status": "reserved",
        "reservedUntil": iso(NOW + timedelta(minutes=14, seconds=1)),
    }
    assert my_ticket_view(reserved, now)["state"] == "Reserved for 15 more minutes"
    assert my_ticket_view(reserved, now)["why_not"].startswith("A buyer holds it")
    assert (
        my_ticket_view({**reserved, "reservedUntil": iso(NOW + timedelta(seconds=30))}, now)[
            "state"
        ]
        == "Reserved for 1 more minute"
    )
    sold = my_ticket_view({"price": 10, "status": "sold"}, now)
    assert (sold["state"], sold["why_not"]) == ("Sold for $10.00", "Sold: it cannot be edited.")
    assert my_ticket_view({"price": 10}, now)["state"] == "Listed"


def test_a_search_is_a_url_in_a_stable_order_without_defaults():
    assert search_url({"sort": "price_asc", "q": "jazz club", "max": "50"}) == (
        "/?q=jazz+club&max=50&sort=price_asc"
    )
    assert search_url({"sort": "newest", "q": ""}) == "/"


def test_the_first_error_is_a_fields_before_the_forms():
    result = ApiResult(
        status=400, field_errors={"minPrice": "minPrice must be a number"}, errors=["x"]
    )
    assert first_error(result) == "minPrice must be a number"
    assert first_error(ApiResult(status=400)) == ""


def test_a_search_keeps_what_the_list_can_use_and_says_what_it_left_out():
    assert checked_search({"q": "jazz", "min": "10", "max": "50.5", "sort": "price_asc"}) == (
        {"q": "jazz", "min": "10", "max": "50.5", "sort": "price_asc"},
        [],
    )
    assert checked_search({"min": "abc", "max": "-5", "sort": "cheapest", "q": "x"}) == (
        {"q": "x"},
        [
            "Min price must be an amount like 10 or 10.50",
            "Max price must be an amount like 10 or 10.50",
        ],
    )
    for bad in ("NaN", "Infinity", "1.234"):
        assert checked_search({"max": bad}) == (
            {},
            ["Max price must be an amount like 10 or 10.50"],
        )


def test_format_money():
    assert format_money(25) == "$25.00"
    assert format_money(1234.5) == "$1,234.50"
    assert format_money(None) == "None"


@pytest.mark.parametrize(
    ("text", "problem"),
    [("abc", "Price must be a number"), ("1e", "Price must be a number"), ("NaN", "Price must be a number"),
     ("", ""), ("20", ""), ("30.50", ""), ("-1", ""), ("1.234", "")],
)  # fmt: skip
def test_a_price_that_is_not_a_number_is_said_so_before_the_service_answers(text, problem):
    assert price_problem(text) == problem  # the rest (> 0, 2 decimals): the service's words


@pytest.mark.parametrize(("price", "shown"), [(30.5, "30.50"), (20, "20.00"), (19.99, "19.99")])
def test_the_edit_form_shows_prices_with_their_cents(price, shown):
    assert price_for_form(price) == shown
