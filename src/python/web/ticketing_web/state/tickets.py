"""The tickets' pages: the landing page's search and list, selling, a ticket's page
(edit or buy), and a seller's own tickets."""

from __future__ import annotations

from typing import Any

import reflex as rx

from ticketing_web import browser
from ticketing_web.api import ApiResult
from ticketing_web.state.polling import poll_while
from ticketing_web.state.session import SERVICES, FormState, SessionState
from ticketing_web.views import (
    SEARCH_PARAMS,
    SORTS,
    checked_search,
    first_error,
    my_ticket_view,
    price_for_form,
    price_problem,
    search_url,
    ticket_view,
)

WATCH_EVERY_SECONDS = 1  # an open list or ticket page re-reads its tickets this often
COUNT_EVERY_TICKS = 3  # ... and the list its count ("12 tickets") every third time


class TicketListState(SessionState):
    tickets: list[dict[str, str]] = []
    loaded: bool = False
    total: int = 0
    next_cursor: str = ""
    search: dict[str, str] = {}  # the URL's q, min, max, sort
    search_error: str = ""
    # the search form's fields: set from the search shown (a new URL, Back), then typed
    q_field: str = ""
    min_field: str = ""
    max_field: str = ""

    @rx.event
    def set_q_field(self, value: str) -> None:
        self.q_field = value

    @rx.event
    def set_min_field(self, value: str) -> None:
        self.min_field = value

    @rx.event
    def set_max_field(self, value: str) -> None:
        self.max_field = value

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
        asked = {k: str(params[k]).strip() for k in SEARCH_PARAMS if params.get(k)}
        self.search, problems = checked_search(asked)
        self.q_field, self.min_field, self.max_field = (
            self.search.get(k, "") for k in ("q", "min", "max")
        )
        result = await SERVICES.list_tickets({**self._api_search(), "count": "true"})
        self._note(result)
        refused = "" if result.ok or result.unavailable else first_error(result)
        self.search_error = " ".join([*problems, refused]).strip()
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

        async def read(tick: int) -> ApiResult:
            async with self:  # as many as are shown now ("Load more" adds to them)
                search = {**self._api_search(), "limit": str(min(200, max(1, len(self.tickets))))}
            if tick % COUNT_EVERY_TICKS == 0:  # the count too, less often (it reads more)
                search["count"] = "true"
            return await SERVICES.list_tickets(search)

        def show(fresh: ApiResult) -> bool:
            if fresh.ok and isinstance(fresh.data, list):
                self.tickets = [ticket_view(t) for t in fresh.data]
                self.next_cursor = fresh.next_cursor  # "Load more" goes on from here
                if fresh.total is not None:
                    self.total = fresh.total
            return True

        await poll_while(self, show, read=read, every=WATCH_EVERY_SECONDS)

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


class NewTicketState(FormState):
    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self._reset_form()
        if problem := price_problem(str(form.get("price", ""))):
            self.field_errors = {"price": problem}
            return
        self._begin_submit()
        yield
        result = await SERVICES.create_ticket(
            self._session(), str(form.get("title", "")), str(form.get("price", ""))
        )
        listed = result.data.get("id", "") if result.ok and isinstance(result.data, dict) else ""
        # on its own page, saying it is on sale (the original went back to the list, silently)
        yield self._end_submit(result) or (
            rx.redirect(f"/tickets/{listed}?listed=1") if listed else None
        )


class TicketDetailState(FormState):
    ticket: dict[str, str] = {}
    not_found: bool = False
    edit_title: str = ""
    edit_price: str = ""
    saved: bool = False
    resuming: bool = False  # sending again a purchase whose answer this tab never saw
    not_placed: str = ""  # ... which did not go through: why

    @rx.var
    def is_owner(self) -> bool:
        return bool(self.user_id) and self.ticket.get("userId") == self.user_id

    @rx.var
    def just_listed(self) -> bool:
        """Its seller arrives here from the sell form (`?listed=1`)."""
        return self.is_owner and self.router.url.query_parameters.get("listed") == "1"

    @rx.event
    def set_edit_title(self, value: str) -> None:
        self.edit_title = value

    @rx.event
    def set_edit_price(self, value: str) -> None:
        self.edit_price = value

    @rx.event
    async def load(self) -> Any:
        self._reset_form()
        self.saved = self.resuming = False
        self.submitting = False
        self.not_placed = ""
        await self.load_user()
        result = await SERVICES.get_ticket(self.ticketId)  # type: ignore[attr-defined]
        self._note(result)
        self.not_found = result.status == 404
        self._show_ticket(result.data if result.ok else {})
        if not result.ok:
            return None
        if not self.user_id:
            return TicketDetailState.watch
        pending = rx.call_script(browser.PENDING_PURCHASE, callback=TicketDetailState.resume)
        return [TicketDetailState.watch, pending]

    @rx.event(background=True)
    async def watch(self) -> None:
        """Live state: re-read the ticket every second while this tab shows it, so a
        reservation, a release or a sale shows within a second, without a reload (a
        short poll: BENCHMARKS.md has its cost). The edit form keeps what is typed."""
        async with self:
            ticket_id = self.ticket.get("id", "")

        def show(fresh: ApiResult) -> bool:
            if fresh.ok and isinstance(fresh.data, dict):
                self.ticket = ticket_view(fresh.data)
            return True

        await poll_while(
            self, show, read=lambda _tick: SERVICES.get_ticket(ticket_id), every=WATCH_EVERY_SECONDS
        )

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
        self._begin_submit()
        yield
        result = await SERVICES.update_ticket(
            self._session(), self.ticket.get("id", ""), self.edit_title, self.edit_price
        )
        yield self._end_submit(result)
        if result.ok:
            self._show_ticket(result.data)
            self.saved = True

    @rx.event
    def resume(self, key: Any) -> Any:
        """load's last step: this tab sent a purchase of this ticket and never saw its
        answer (the web process died meanwhile). Sent again with its key, it is placed
        once — or the page says why it was not."""
        if not (isinstance(key, str) and key):
            return None
        self.resuming = True
        return TicketDetailState.purchase(key)

    @rx.event
    async def purchase(self, key: Any) -> Any:
        """Reserve the ticket (the Purchase button's callback: the tab noted the purchase
        and its `key` in the browser before sending it)."""
        self._begin_submit()
        yield
        request_key = key if isinstance(key, str) else ""
        result = await SERVICES.create_order(
            self._session(), self.ticket.get("id", ""), request_key
        )
        if not result.unavailable:  # an answer: the note's work is done
            yield rx.call_script(browser.FORGET_PURCHASE)
        yield self._end_submit(result)
        if result.ok and isinstance(result.data, dict):
            after = "?resumed=1" if self.resuming else ""
            yield rx.redirect(f"/orders/{result.data.get('id', '')}{after}")
        elif self.resuming and not result.unavailable:
            why = " ".join([*result.errors, *result.field_errors.values()])
            self.not_placed = why if why.endswith(".") else f"{why}."


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
        return redirect or MyTicketsState.watch

    @rx.event(background=True)
    async def watch(self) -> None:
        """Live state: every second the seller's tickets are read again, so a reservation,
        its release and a sale show without a reload, until this tab loads another page."""
        async with self:
            session = self._session()

        def show(fresh: ApiResult) -> bool:
            if fresh.ok and isinstance(fresh.data, list):
                self.tickets = [my_ticket_view(t) for t in fresh.data]
            return True

        await poll_while(
            self, show, read=lambda _tick: SERVICES.my_tickets(session), every=WATCH_EVERY_SECONDS
        )
