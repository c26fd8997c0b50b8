"""Reflex state: the signed-in user (from the HttpOnly `session` cookie) and each page's data.

The browser holds auth's own `session` cookie (HttpOnly: no page script can read it).
The backend reads it from the headers of the page's websocket connection and forwards
it on every service call, so the services see the same user the browser does; it is
never stored in state or sent to the page.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from ticketing_web import browser
from ticketing_web.api import (
    ApiResult,
    Services,
    format_money,
    price_for_form,
    price_problem,
    session_from_cookie_header,
)
from ticketing_web.settings import WebSettings

SETTINGS = WebSettings.from_env()
SERVICES = Services(SETTINGS)
TEST_CARD, DECLINED_CARD = "tok_visa", "tok_chargeDeclined"  # the payments test provider's
POLL_EVERY_SECONDS = 3  # an order page re-reads the order's status this often
WATCH_EVERY_SECONDS = 1  # a ticket page re-reads the ticket this often (live state)
POLL_AFTER_EXPIRY_SECONDS = 60  # ... and keeps at it this long past zero, to show the cancel


def ticket_view(ticket: dict[str, Any]) -> dict[str, str]:
    return {
        "id": str(ticket.get("id", "")),
        "title": str(ticket.get("title", "")),
        "price": format_money(ticket.get("price")),
        "userId": str(ticket.get("userId", "")),
        "status": str(ticket.get("status", "available")),  # available | reserved | sold
    }


def expires_at(order: dict[str, Any]) -> float:
    """`expiresAt` (ISO 8601) as a Unix time; 0 if it is missing or malformed."""
    try:
        return datetime.fromisoformat(
            str(order.get("expiresAt", "")).replace("Z", "+00:00")
        ).timestamp()
    except ValueError:
        return 0.0


def seconds_left(deadline: float, now: float | None = None) -> int:
    return max(0, math.ceil(deadline - (time.time() if now is None else now)))


def time_left(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}:{seconds:02d}"


def order_view(order: dict[str, Any]) -> dict[str, str]:
    ticket = order.get("ticket") if isinstance(order.get("ticket"), dict) else {}
    status = str(order.get("status", ""))
    left = seconds_left(expires_at(order))
    shown = {"created": f"awaiting payment, {time_left(left)} left" if left else "expired"}
    return {
        "id": str(order.get("id", "")),
        "status": status,
        "status_text": shown.get(status, status),
        "title": str(ticket.get("title", "")),
        "price": format_money(ticket.get("price")),
        "ticketId": str(ticket.get("id", "")),
        "reason": str(order.get("reason") or ""),  # why the service cancelled it
        "payment": str(order.get("payment") or ""),  # authorized, captured, voided, refunded
    }


class SessionState(rx.State):
    user_id: str = ""
    user_email: str = ""
    banner: str = ""  # a service could not be reached
    _countdown: str = ""  # the order page view whose countdown runs; any page load ends it

    @rx.var
    def signed_in(self) -> bool:
        return bool(self.user_id)

    def _session(self) -> str:
        return session_from_cookie_header(self.router.headers.cookie)

    def _note(self, result: ApiResult) -> None:
        self.banner = result.errors[0] if result.unavailable else ""

    @rx.event
    async def load_user(self) -> None:
        self.banner = ""
        self._countdown = ""
        session = self._session()
        if not session:
            self.user_id = self.user_email = ""
            return
        result = await SERVICES.current_user(session)
        self._note(result)
        user = (result.data or {}).get("currentUser") if result.ok else None
        self.user_id = str(user.get("id", "")) if isinstance(user, dict) else ""
        self.user_email = str(user.get("email", "")) if isinstance(user, dict) else ""

    @rx.event
    def signout(self) -> Any:
        """on_load of /auth/signout: the browser asks auth to clear its cookie."""
        return rx.call_script(
            browser.post_json("/api/users/signout"), callback=SessionState.signed_out
        )

    @rx.event
    def signout_everywhere(self) -> Any:
        """on_load of /auth/signout-everywhere: every session of this user ends."""
        return rx.call_script(
            browser.post_json("/api/users/signout?everywhere=true"),
            callback=SessionState.signed_out,
        )

    @rx.event
    def signed_out(self, _outcome: Any) -> Any:
        self.user_id = self.user_email = ""
        return rx.call_script(browser.load_page("/"))

    def _signin_link(self) -> str:
        return f"/auth/signin?next={self.router.url.path}"

    @rx.event
    async def require_user(self) -> Any:
        """on_load for pages that need a signed-in user."""
        await self.load_user()
        if not self.user_id and not self.banner:
            return rx.redirect(self._signin_link())
        return None

    async def _signed_in_list(
        self, fetch: Callable[[str], Awaitable[ApiResult]]
    ) -> tuple[Any, list[dict[str, Any]]]:
        """A list page of the signed-in user's: (the way to sign in, or None; the items
        the service gave, none if it failed — the banner says why)."""
        redirect = await self.require_user()
        if redirect is not None:
            return redirect, []
        result = await fetch(self._session())
        self._note(result)
        return None, result.data if result.ok and isinstance(result.data, list) else []


class FormState(SessionState):
    """Field errors in the API's own words, general errors, and a busy flag."""

    field_errors: dict[str, str] = {}
    form_errors: list[str] = []
    submitting: bool = False

    def _reset_form(self) -> None:
        self.field_errors, self.form_errors = {}, []

    @rx.event
    async def open_form(self) -> None:
        """on_load of a form page: no errors left over from another page."""
        self._reset_form()
        self.submitting = False
        await self.load_user()

    @rx.event
    async def open_signed_in_form(self) -> Any:
        """on_load of a form page that needs a signed-in user."""
        self._reset_form()
        self.submitting = False
        return await self.require_user()

    def _show_errors(self, result: ApiResult) -> None:
        self._note(result)
        self.field_errors = result.field_errors
        self.form_errors = [] if result.unavailable else result.errors


class AuthFormState(FormState):
    """Sign-up and sign-in are posted by the browser itself, so auth's HttpOnly cookie
    lands there; the backend shows the answer and then reloads the page."""

    @rx.event
    def signup(self, form: dict[str, Any]) -> Any:
        return self._authenticate("signup", form)

    @rx.event
    def signin(self, form: dict[str, Any]) -> Any:
        return self._authenticate("signin", form)

    def _authenticate(self, action: str, form: dict[str, Any]) -> Any:
        self._reset_form()
        self.submitting = True
        credentials = {
            "email": str(form.get("email", "")),
            "password": str(form.get("password", "")),
        }
        return rx.call_script(
            browser.post_json(f"/api/users/{action}", credentials),
            callback=AuthFormState.authenticated,
        )

    @rx.event
    def authenticated(self, outcome: Any) -> Any:
        self.submitting = False
        outcome = outcome if isinstance(outcome, dict) else {}
        status = outcome.get("status")
        result = ApiResult.from_response(
            status if isinstance(status, int) else 0, outcome.get("body")
        )
        if result.ok:
            next_page = browser.local_path(self.router.url.query_parameters.get("next"))
            return rx.call_script(browser.load_page(next_page))
        self._show_errors(result)
        return None


# The landing page's search, in its URL (/?q=jazz&min=10&max=50&sort=price_asc): a
# search can be shared, and back/forward go through the searches made.
SEARCH_PARAMS = {"q": "q", "min": "minPrice", "max": "maxPrice", "sort": "sort"}
SORTS = {
    "newest": "Newest first",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
}


class TicketListState(SessionState):
    tickets: list[dict[str, str]] = []
    loaded: bool = False
    total: int = 0
    next_cursor: str = ""
    search: dict[str, str] = {}  # the URL's q, min, max, sort
    search_error: str = ""

    @rx.var
    def count_text(self) -> str:
        return "1 ticket" if self.total == 1 else f"{self.total:,} tickets"

    @rx.var
    def sort_links(self) -> list[dict[str, str]]:
        """The three orders, each a link to this search in that order."""
        current = self.search.get("sort", "newest")
        return [
            {"value": value, "label": label, "href": search_url({**self.search, "sort": value}),
             "current": "true" if value == current else ""}
            for value, label in SORTS.items()
        ]  # fmt: skip

    def _api_search(self) -> dict[str, str]:
        return {api: self.search.get(ours, "") for ours, api in SEARCH_PARAMS.items()}

    @rx.event
    async def load(self) -> Any:
        """on_load of /: the first page of the search the URL holds."""
        await self.load_user()
        params = self.router.url.query_parameters
        self.search = {k: str(params[k]).strip() for k in SEARCH_PARAMS if params.get(k)}
        result = await SERVICES.list_tickets({**self._api_search(), "count": "true"})
        self._note(result)
        self.search_error = "" if result.ok or result.unavailable else _first_error(result)
        self.tickets = [ticket_view(t) for t in result.data] if result.ok else []
        self.total = (result.total or 0) if result.ok else 0
        self.next_cursor = result.next_cursor if result.ok else ""
        self.loaded = True
        return TicketListState.watch if result.ok else None

    @rx.event(background=True)
    async def watch(self) -> None:
        """Live state: every second, the tickets shown are read again (the same search,
        as many as are shown, up to 200), so one reserved or sold elsewhere leaves the
        list, and one released comes back, without a reload."""
        async with self:
            view = self._countdown = uuid.uuid4().hex
        while True:
            await asyncio.sleep(WATCH_EVERY_SECONDS)
            async with self:
                if self._countdown != view:
                    return
                search = {**self._api_search(), "limit": str(min(200, max(1, len(self.tickets))))}
            fresh = await SERVICES.list_tickets(search)
            async with self:
                if self._countdown != view:
                    return
                if fresh.ok and isinstance(fresh.data, list):
                    self.tickets = [ticket_view(t) for t in fresh.data]
                    self.next_cursor = fresh.next_cursor  # "Load more" goes on from here

    @rx.event
    async def load_more(self) -> None:
        """The next page, added below the ones shown."""
        result = await SERVICES.list_tickets({**self._api_search(), "cursor": self.next_cursor})
        self._note(result)
        if result.ok:
            self.tickets = self.tickets + [ticket_view(t) for t in result.data]
            self.next_cursor = result.next_cursor

    @rx.event
    def find(self, form: dict[str, Any]) -> Any:
        """The search form: its words and prices, in the order shown, become the URL (a
        new history entry)."""
        values = {k: str(form.get(k, "")).strip() for k in ("q", "min", "max")}
        return rx.redirect(search_url({**values, "sort": self.search.get("sort", "")}))


def search_url(search: dict[str, str]) -> str:
    """/ with the search's parameters in their usual order (newest: the default, left out)."""
    query = urlencode(
        {k: search[k] for k in SEARCH_PARAMS if search.get(k) not in (None, "", "newest")}
    )
    return "/?" + query if query else "/"


def _first_error(result: ApiResult) -> str:
    messages = list(result.field_errors.values()) + result.errors
    return messages[0] if messages else ""


class NewTicketState(FormState):
    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self._reset_form()
        if problem := price_problem(str(form.get("price", ""))):
            self.field_errors = {"price": problem}
            return
        self.submitting = True
        yield
        result = await SERVICES.create_ticket(
            self._session(), str(form.get("title", "")), str(form.get("price", ""))
        )
        self.submitting = False
        if result.ok:
            yield rx.redirect("/")
        elif result.status == 401:
            yield rx.redirect(self._signin_link())
        else:
            self._show_errors(result)


class TicketDetailState(FormState):
    ticket: dict[str, str] = {}
    not_found: bool = False
    edit_title: str = ""
    edit_price: str = ""
    saved: bool = False

    @rx.var
    def is_owner(self) -> bool:
        return bool(self.user_id) and self.ticket.get("userId") == self.user_id

    @rx.event
    def set_edit_title(self, value: str) -> None:
        self.edit_title = value

    @rx.event
    def set_edit_price(self, value: str) -> None:
        self.edit_price = value

    @rx.event
    async def load(self) -> Any:
        self._reset_form()
        self.saved = False
        self.submitting = False
        await self.load_user()
        result = await SERVICES.get_ticket(self.ticketId)  # type: ignore[attr-defined]
        self._note(result)
        self.not_found = result.status == 404
        self._show_ticket(result.data if result.ok else {})
        return TicketDetailState.watch if result.ok else None

    @rx.event(background=True)
    async def watch(self) -> None:
        """Live state: re-read the ticket every second while this tab shows it, so a
        reservation, a release or a sale shows within a second, without a reload (a
        short poll: BENCHMARKS.md has its cost). The edit form keeps what is typed."""
        async with self:
            view = self._countdown = uuid.uuid4().hex
            ticket_id = self.ticket.get("id", "")
        while True:
            await asyncio.sleep(WATCH_EVERY_SECONDS)
            fresh = await SERVICES.get_ticket(ticket_id)
            async with self:
                if self._countdown != view:
                    return
                if fresh.ok and isinstance(fresh.data, dict):
                    self.ticket = ticket_view(fresh.data)

    def _show_ticket(self, ticket: dict[str, Any]) -> None:
        self.ticket = ticket_view(ticket) if ticket else {}
        self.edit_title = str(ticket.get("title", "")) if ticket else ""
        self.edit_price = price_for_form(ticket.get("price", "")) if ticket else ""

    @rx.event
    async def save(self, form: dict[str, Any]) -> Any:
        self._reset_form()
        self.saved = False
        if problem := price_problem(self.edit_price):
            self.field_errors = {"price": problem}
            return
        self.submitting = True
        yield
        result = await SERVICES.update_ticket(
            self._session(), self.ticket.get("id", ""), self.edit_title, self.edit_price
        )
        self.submitting = False
        if result.ok:
            self._show_ticket(result.data)
            self.saved = True
        else:
            self._show_errors(result)

    @rx.event
    async def purchase(self) -> Any:
        self._reset_form()
        self.submitting = True
        yield
        result = await SERVICES.create_order(self._session(), self.ticket.get("id", ""))
        self.submitting = False
        if result.ok and isinstance(result.data, dict):
            yield rx.redirect(f"/orders/{result.data.get('id', '')}")
        elif result.status == 401:
            yield rx.redirect(self._signin_link())
        else:
            self._show_errors(result)


def my_ticket_view(ticket: dict[str, Any], now: float | None = None) -> dict[str, str]:
    """A seller's ticket: its state in words, and whether (or why not) it can be edited."""
    view = ticket_view(ticket)
    left = seconds_left(expires_at({"expiresAt": ticket.get("reservedUntil") or ""}), now)
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


class MyTicketsState(SessionState):
    """/my-tickets: what a seller listed, and what became of each."""

    tickets: list[dict[str, str]] = []
    loaded: bool = False

    @rx.event
    async def load(self) -> Any:
        self.loaded = False
        redirect, found = await self._signed_in_list(SERVICES.my_tickets)
        self.tickets = [my_ticket_view(t) for t in found]
        self.loaded = True
        return redirect


class OrderListState(SessionState):
    orders: list[dict[str, str]] = []
    loaded: bool = False
    _raw: list[dict[str, Any]] = []  # the orders as the service gave them

    @rx.event
    async def load(self) -> Any:
        self.loaded = False
        redirect, orders = await self._signed_in_list(SERVICES.list_orders)
        if redirect is not None:
            return redirect
        self._raw = list(reversed(orders))  # newest first
        self.orders = [order_view(o) for o in self._raw]
        self.loaded = True
        return OrderListState.tick if any(o["status"] == "created" for o in self.orders) else None

    @rx.event(background=True)
    async def tick(self) -> None:
        """Each unpaid order's "m:ss left" counts down every second, until none is
        left waiting or this tab loads another page."""
        async with self:
            view = self._countdown = uuid.uuid4().hex
        while True:
            await asyncio.sleep(1)
            async with self:
                if self._countdown != view:
                    return
                self.orders = [order_view(o) for o in self._raw]
                if not any(o["status_text"].startswith("awaiting") for o in self.orders):
                    self._countdown = ""
                    return


class OrderState(FormState):
    """/orders/[orderId]: the order, a live countdown to its expiry, the pay form."""

    order: dict[str, str] = {}
    not_found: bool = False
    not_yours: bool = False  # another user's order (403)
    seconds_left: int = 0
    processing: bool = False  # paid (card authorized): orders is deciding
    _expires_at: float = 0.0

    @rx.var
    def expired(self) -> bool:
        status = self.order.get("status", "")
        if self.processing:  # orders is deciding
            return False
        return status == "cancelled" or (status == "created" and self.seconds_left <= 0)

    @rx.var
    def status_text(self) -> str:
        """The order's status, one state at a time: past its expiry an unpaid order
        reads "expired" at once (orders' own cancel follows within seconds)."""
        status = self.order.get("status", "")
        return "expired" if status == "created" and self.expired else status

    @rx.var
    def payable(self) -> bool:
        return (
            self.order.get("status", "") == "created"
            and self.seconds_left > 0
            and not self.processing
        )

    @rx.var
    def reason_text(self) -> str:
        """Why the service cancelled the order, when it is not its expiry (shown apart)."""
        reason = self.order.get("reason", "")
        return "" if not reason or "expired" in reason else reason

    @rx.var
    def countdown_text(self) -> str:
        return f"{self.seconds_left} seconds until the order expires"

    def _show_order(self, order: dict[str, Any]) -> None:
        self.order = order_view(order)
        if self.order["status"] != "created":
            self.processing = False  # decided
        self._expires_at = expires_at(order)
        self.seconds_left = seconds_left(self._expires_at)

    @rx.event
    async def load(self) -> Any:
        self._reset_form()
        self.submitting = False
        self.order, self.not_found, self.not_yours, self.processing = {}, False, False, False
        redirect = await self.require_user()
        if redirect is not None:
            return redirect
        result = await SERVICES.get_order(self._session(), self.orderId)  # type: ignore[attr-defined]
        self._note(result)
        self.not_found = result.status in (400, 404)
        self.not_yours = result.status == 403
        if not (result.ok and isinstance(result.data, dict)):
            return None
        self._show_order(result.data)
        return OrderState.count_down if self.order["status"] == "created" else None

    @rx.event(background=True)
    async def count_down(self) -> None:
        """Ticks `seconds_left` every second and re-reads the order now and then (it is
        paid or cancelled elsewhere). Ends when the order is settled, when it has been
        expired for a while, or when this tab loads any page."""
        async with self:
            view = self._countdown = uuid.uuid4().hex
            session, order_id = self._session(), self.order.get("id", "")
        ticks, processing = 0, False
        while True:
            await asyncio.sleep(1)
            ticks += 1
            fresh = None
            if processing or ticks % POLL_EVERY_SECONDS == 0:  # paid: every second
                fresh = await SERVICES.get_order(session, order_id)
            async with self:
                if self._countdown != view:
                    return
                if fresh is not None and fresh.ok and isinstance(fresh.data, dict):
                    self._show_order(fresh.data)
                else:
                    self.seconds_left = seconds_left(self._expires_at)
                processing = self.processing
                past_expiry = time.time() - self._expires_at
                if self.order.get("status") != "created" or past_expiry > POLL_AFTER_EXPIRY_SECONDS:
                    self._countdown = ""
                    return

    @rx.event
    async def pay(self, token: str) -> Any:
        self._reset_form()
        self.submitting = True
        yield
        result = await SERVICES.pay(self._session(), self.order.get("id", ""), token)
        self.submitting = False
        if result.ok:  # the card is authorized; orders decides, then it is charged
            self.processing = True
            yield OrderState.count_down  # (again: now polling every second)
        elif result.status == 401:
            yield rx.redirect(self._signin_link())
        else:
            self._show_errors(result)
            # the pay form has no fields of its own: every message is the form's
            self.form_errors = [*self.form_errors, *self.field_errors.values()]
            self.field_errors = {}

    @rx.event
    def mount_card(self) -> Any:
        return rx.call_script(
            browser.stripe_mount(SETTINGS.stripe_publishable_key), callback=OrderState.card_ready
        )

    @rx.event
    def card_ready(self, problem: Any) -> None:
        self.form_errors = [problem] if isinstance(problem, str) and problem else []

    @rx.event
    def pay_with_card(self) -> Any:
        self._reset_form()
        return rx.call_script(browser.READ_STRIPE_CARD, callback=OrderState.card_tokenized)

    @rx.event
    def card_tokenized(self, outcome: Any) -> Any:
        outcome = outcome if isinstance(outcome, dict) else {}
        if isinstance(outcome.get("token"), str):
            return OrderState.pay(outcome["token"])
        self.form_errors = [str(outcome.get("error") or "The card could not be read.")]
        return None
