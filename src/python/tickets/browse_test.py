"""Browsing at scale (`GET /api/tickets` with q, minPrice, maxPrice, sort, cursor), on
the real database: every ticket reachable once, in order, through every sort."""

from __future__ import annotations

import pytest

from testkit.auth import session_cookie

URL = "/api/tickets"
TITLES = ["Jazz night", "jazz brunch", "Rock gig", "Late JAZZ jam", "Opera", "Folk night"]


async def sell(client, title: str, price: float) -> dict:
    response = await client.post(
        URL, json={"title": title, "price": price}, cookies=session_cookie(user_id="seller")
    )
    assert response.status_code == 201, response.text
    return response.json()


async def every_page(client, params: dict, limit: int = 4) -> tuple[list[dict], set[str]]:
    """Follow X-Next-Cursor to the end; the tickets in order, and the counts seen."""
    seen, counts, cursor = [], set(), None
    while True:
        page_params = {**params, "limit": limit, "count": cursor is None}
        page_params |= {"cursor": cursor} if cursor else {}
        response = await client.get(URL, params=page_params)
        assert response.status_code == 200, response.text
        seen += response.json()
        counts.add(response.headers.get("x-total-count", "not asked"))
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            return seen, counts


@pytest.fixture
async def market(client) -> list[dict]:
    """30 tickets: six titles, prices with many ties (5 prices)."""
    return [await sell(client, TITLES[i % 6], [10, 25.5, 10, 99.99, 40][i % 5]) for i in range(30)]


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("newest", lambda t: t["id"]),
        ("price_asc", lambda t: (t["price"], t["id"])),
        ("price_desc", lambda t: (t["price"], t["id"])),
    ],
)
async def test_every_sort_pages_through_every_ticket_once_in_order(client, market, sort, key):
    seen, counts = await every_page(client, {"sort": sort})
    expected = sorted(market, key=key, reverse=sort != "price_asc")
    assert [t["id"] for t in seen] == [t["id"] for t in expected]
    assert counts == {"30", "not asked"}


async def test_words_match_the_title_in_any_case_and_all_must_match(client, market):
    jazz, _ = await every_page(client, {"q": "JAZZ"})
    assert {t["title"] for t in jazz} == {"Jazz night", "jazz brunch", "Late JAZZ jam"}
    assert len(jazz) == 15
    both, counts = await every_page(client, {"q": "night jazz"})
    assert {t["title"] for t in both} == {"Jazz night"} and "5" in counts
    regex_chars, _ = await every_page(client, {"q": ".* (["})
    assert regex_chars == []  # the words are text, not patterns


async def test_a_price_range_is_inclusive_and_combines_with_words_and_sort(client, market):
    seen, counts = await every_page(
        client, {"minPrice": 10, "maxPrice": 25.5, "q": "night", "sort": "price_desc"}
    )
    assert seen and all(10 <= t["price"] <= 25.5 and "night" in t["title"].lower() for t in seen)
    assert [t["price"] for t in seen] == sorted((t["price"] for t in seen), reverse=True)
    assert str(len(seen)) in counts


async def test_a_ticket_listed_while_paging_by_price_is_met_where_it_belongs(client, market):
    first = await client.get(URL, params={"sort": "price_asc", "limit": 10})
    cursor = first.headers["x-next-cursor"]
    cheap, dear = await sell(client, "Cheap", 1), await sell(client, "Dear", 500)
    rest, _ = await every_page(client, {"sort": "price_asc", "cursor": cursor})
    ids = [t["id"] for t in first.json() + rest]
    assert cheap["id"] not in ids and dear["id"] == ids[-1]  # behind the cursor / ahead
    assert len(ids) == len(set(ids)) == 31


async def test_the_original_plain_call_is_unchanged(client, market):
    response = await client.get(URL)
    assert [t["id"] for t in response.json()] == [t["id"] for t in reversed(market)]
    assert "x-next-cursor" not in response.headers and "x-total-count" not in response.headers


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "cheapest"}, "sort"),
        ({"minPrice": "abc"}, "minPrice"),
        ({"maxPrice": -1}, "maxPrice"),
        ({"minPrice": 1.234}, "minPrice"),
        ({"q": "x" * 101}, "q"),
        ({"q": " ".join("abcdefghi")}, "q"),
        ({"sort": "price_asc", "cursor": "6543210fedcba9876543210f"}, "cursor"),  # newest's
        ({"sort": "newest", "cursor": "1000_6543210fedcba9876543210f"}, "cursor"),
        ({"sort": "price_desc", "cursor": "-5_6543210fedcba9876543210f"}, "cursor"),
    ],
)
async def test_bad_values_are_a_400_naming_the_parameter(client, params, field):
    response = await client.get(URL, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field
