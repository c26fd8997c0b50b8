"""Reflex state: the signed-in user (from the `session` cookie) and each page's data.

The browser keeps the auth service's `session` cookie (an rx.Cookie); every call to a
service forwards it, so the services see the same user the browser does.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from ticketing_web.api import ApiResult, Services, format_money
from ticketing_web.settings import SESSION_MAX_AGE, WebSettings

SETTINGS = WebSettings.from_env()


def services() -> Services:
    return Services(SETTINGS)


def ticket_view(ticket: dict[str, Any]) -> dict[str, str]:
    return {
        "id": str(ticket.get("id", "")),
        "title": str(ticket.get("title", "")),
        "price": format_money(ticket.get("price")),
        "userId": str(ticket.get("userId", "")),
    }


class SessionState(rx.State):
    session: str = rx.Cookie(
        "",
        name="session",
        path="/",
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        secure=SETTINGS.cookie_secure,
    )
    user_id: str = ""
    user_email: str = ""
    banner: str = ""  # a service could not be reached

    @rx.var
    def signed_in(self) -> bool:
        return bool(self.user_id)

    def _note(self, result: ApiResult) -> None:
        self.banner = result.errors[0] if result.unavailable else ""

    @rx.event
    async def load_user(self) -> None:
        self.banner = ""
        if not self.session:
            self.user_id = self.user_email = ""
            return
        result = await services().current_user(self.session)
        self._note(result)
        user = (result.data or {}).get("currentUser") if result.ok else None
        self.user_id = user["id"] if user else ""
        self.user_email = user["email"] if user else ""
        if result.ok and not user:
            self.session = ""  # expired or invalid: forget it

    def _start_session(self, result: ApiResult) -> None:
        if result.session:
            self.session = result.session
        data = result.data or {}
        self.user_id, self.user_email = data.get("id", ""), data.get("email", "")

    @rx.event
    async def signout(self) -> Any:
        if self.session:
            await services().signout(self.session)
        self.session = ""
        self.user_id = self.user_email = ""
        return rx.redirect("/")

    @rx.event
    async def require_user(self) -> Any:
        """on_load for pages that need a signed-in user."""
        await self.load_user()
        if not self.user_id and not self.banner:
            return rx.redirect("/auth/signin")
        return None


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
    @rx.event
    async def signup(self, form: dict[str, Any]) -> Any:
        async for update in self._authenticate("signup", form):
            yield update

    @rx.event
    async def signin(self, form: dict[str, Any]) -> Any:
        async for update in self._authenticate("signin", form):
            yield update

    async def _authenticate(self, action: str, form: dict[str, Any]) -> Any:
        self._reset_form()
        self.submitting = True
        yield
        call = services().signup if action == "signup" else services().signin
        result = await call(str(form.get("email", "")), str(form.get("password", "")))
        self.submitting = False
        if result.ok:
            self._start_session(result)
            yield rx.redirect("/")
        else:
            self._show_errors(result)


class TicketListState(SessionState):
    tickets: list[dict[str, str]] = []
    loaded: bool = False

    @rx.event
    async def load(self) -> None:
        await self.load_user()
        result = await services().list_tickets()
        self._note(result)
        self.tickets = [ticket_view(t) for t in result.data] if result.ok else []
        self.loaded = True


class NewTicketState(FormState):
    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self._reset_form()
        self.submitting = True
        yield
        result = await services().create_ticket(
            self.session, str(form.get("title", "")), str(form.get("price", ""))
        )
        self.submitting = False
        if result.ok:
            yield rx.redirect("/")
        elif result.status == 401:
            yield rx.redirect("/auth/signin")
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
    async def load(self) -> None:
        self._reset_form()
        self.saved = False
        await self.load_user()
        result = await services().get_ticket(self.ticketId)  # type: ignore[attr-defined]
        self._note(result)
        self.not_found = result.status == 404
        self._show_ticket(result.data if result.ok else {})

    def _show_ticket(self, ticket: dict[str, Any]) -> None:
        self.ticket = ticket_view(ticket) if ticket else {}
        self.edit_title = str(ticket.get("title", "")) if ticket else ""
        self.edit_price = str(ticket.get("price", "")) if ticket else ""

    @rx.event
    async def save(self, form: dict[str, Any]) -> Any:
        self._reset_form()
        self.saved = False
        self.submitting = True
        yield
        result = await services().update_ticket(
            self.session, self.ticket.get("id", ""), self.edit_title, self.edit_price
        )
        self.submitting = False
        if result.ok:
            self._show_ticket(result.data)
            self.saved = True
        else:
            self._show_errors(result)
