"""What the pages show, made from what the services answer: plain functions of their
inputs (the states call them; `views_test.py` checks them)."""

from __future__ import annotations

import math
import time
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from ticketing_web.api import ApiResult, price_for_api

# The landing page's search, in its URL (/?q=jazz&min=10&max=50&sort=price_asc): a
# search can be shared, and back/forward go through the searches made.
SEARCH_PARAMS = {"q": "q", "min": "minPrice", "max": "maxPrice", "sort": "sort"}
SORTS = {
    "newest": "Newest first",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
}


def ticket_view(ticket: dict[str, Any]) -> dict[str, str]:
    return {
        "id": str(ticket.get("id", "")),
        "title": str(ticket.get("title", "")),
        "price": format_money(ticket.get("price")),
        "userId": str(ticket.get("userId", "")),
        "status": str(ticket.get("status", "available")),  # available | reserved | sold
    }


def unix_time(iso: Any) -> float:
    """An ISO 8601 instant as a Unix time; 0 if it is missing or malformed."""
    try:
        return datetime.fromisoformat(str(iso or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def expires_at(order: dict[str, Any]) -> float:
    return unix_time(order.get("expiresAt"))


def seconds_left(deadline: float, now: float | None = None) -> int:
    return max(0, math.ceil(deadline - (time.time() if now is None else now)))


def time_left(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}:{seconds:02d}"


# An order's status in a buyer's words (the API's: created, complete, cancelled)
STATUS_WORDS = {"created": "awaiting payment", "complete": "paid", "cancelled": "cancelled"}


def status_word(status: str) -> str:
    return STATUS_WORDS.get(status, status)


def order_view(order: dict[str, Any], now: float | None = None) -> dict[str, str]:
    ticket = order.get("ticket") if isinstance(order.get("ticket"), dict) else {}
    status = str(order.get("status", ""))
    left = seconds_left(expires_at(order), now)
    shown = {"created": f"awaiting payment, {time_left(left)} left" if left else "expired"}
    return {
        "id": str(order.get("id", "")),
        "status": status,
        "status_text": shown.get(status, status_word(status)),
        "title": str(ticket.get("title", "")),
        "price": format_money(ticket.get("price")),
        "ticketId": str(ticket.get("id", "")),
        "reason": str(order.get("reason") or ""),  # why the service cancelled it
        "payment": str(order.get("payment") or ""),  # authorized, captured, voided, refunded
    }


def my_ticket_view(ticket: dict[str, Any], now: float | None = None) -> dict[str, str]:
    """A seller's ticket: its state in words, and whether (or why not) it can be edited."""
    view = ticket_view(ticket)
    left = seconds_left(unix_time(ticket.get("reservedUntil")), now)
    minutes = max(1, math.ceil(left / 60))
    state, why_not = {
        "available": ("Listed", ""),
        "reserved": (
            (
                f"Reserved for {minutes} more minute{'s' if minutes > 1 else ''}"
                if left
                else "Reserved"
            ),
            "A buyer holds it: it can be edited again if their order ends unpaid.",
        ),
        "sold": (f"Sold for {view['price']}", "Sold: it cannot be edited."),
    }.get(view["status"], (view["status"], ""))
    return {**view, "state": state, "why_not": why_not}


PRICE_LIMITS = {"min": "Min price", "max": "Max price"}


def checked_search(asked: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The URL's search as the list can use it, and what was wrong with the rest, in
    the page's words: a price limit that is not an amount (0 or more, cents at most) is
    left out (a typed address, an old link), as is an order we do not offer."""
    search, problems = {}, []
    for key, value in asked.items():
        if key in PRICE_LIMITS:
            try:
                number = Decimal(value)
            except InvalidOperation:
                number = Decimal(-1)
            if not number.is_finite() or number < 0 or number.as_tuple().exponent < -2:  # type: ignore[operator]
                problems.append(f"{PRICE_LIMITS[key]} must be an amount like 10 or 10.50")
                continue
        if key == "sort" and value not in SORTS:
            continue
        search[key] = value
    return search, problems


def search_url(search: dict[str, str]) -> str:
    """/ with the search's parameters in their usual order (newest: the default, left out)."""
    query = urlencode(
        {k: search[k] for k in SEARCH_PARAMS if search.get(k) not in (None, "", "newest")}
    )
    return "/?" + query if query else "/"


def first_error(result: ApiResult) -> str:
    messages = list(result.field_errors.values()) + result.errors
    return messages[0] if messages else ""


def price_problem(text: str) -> str:
    """What is wrong with a price typed in a form before the service sees it: only that
    it is not a number (the service says the rest: > 0, two decimals)."""
    if not text.strip():
        return ""  # the service: "Price must be greater than 0"
    return "" if isinstance(price_for_api(text), int | float) else "Price must be a number"


def price_for_form(price: Any) -> str:
    """A price as the form shows it: 30.50, not 30.5."""
    try:
        return f"{Decimal(str(price)):.2f}"
    except (InvalidOperation, ValueError):
        return str(price)


def format_money(price: Any) -> str:
    try:
        return f"${Decimal(str(price)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(price)
