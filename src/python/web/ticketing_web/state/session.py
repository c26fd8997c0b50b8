"""The signed-in user (from the HttpOnly `session` cookie), and what every form shares.

The browser holds auth's own `session` cookie (HttpOnly: no page script can read it).
The backend reads it from the headers of the page's websocket connection and forwards
it on every service call, so the services see the same user the browser does; it is
never stored in state or sent to the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import reflex as rx

from ticketing_web import browser
from ticketing_web.api import ApiResult, Services, session_from_cookie_header
from ticketing_web.settings import WebSettings
from ticketing_web.state.polling import poll_while

SETTINGS = WebSettings.from_env()
SERVICES = Services(SETTINGS)
SESSION_CHECK_SECONDS = 10  # a signed-in tab asks auth this often if its session holds


class SessionState(rx.State):
    user_id: str = ""
    user_email: str = ""
    banner: str = ""  # a service could not be reached
    _live_view: str = ""  # the page view whose live updates run (`poll_while`); a load ends them
    _session_watch: str = ""  # the page view whose session check runs (the latest)

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
        self._live_view = ""
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

    def _signin_link(self, ended: bool = False) -> str:
        """Sign in, then back here; `ended`: this tab's session ended meanwhile (signed
        out elsewhere, or out of time), and the sign-in page says so."""
        return f"/auth/signin?next={self.router.url.path}" + ("&ended=1" if ended else "")

    @rx.event(background=True)
    async def watch_session(self) -> Any:
        """Every page's last on_load step: while the tab stays signed in on this page, ask
        auth every few seconds if its session still holds. One that ended elsewhere
        ("Sign out everywhere", its time) takes even an idle tab to sign in, told why,
        instead of leaving its signed-in header up until the next click."""
        async with self:
            session = self._session()
        if not session:
            return None

        def show(result: ApiResult) -> Any:
            if not self.user_id:
                return None  # signed out here meanwhile
            if result.ok and not (result.data or {}).get("currentUser"):
                self.user_id = self.user_email = ""
                return rx.redirect(self._signin_link(ended=True))
            return True

        return await poll_while(
            self,
            show,
            read=lambda _tick: SERVICES.current_user(session),
            every=SESSION_CHECK_SECONDS,
            view="_session_watch",
        )

    @rx.event
    async def require_user(self) -> Any:
        """on_load for pages that need a signed-in user."""
        was_signed_in = bool(self.user_id)
        await self.load_user()
        if not self.user_id and not self.banner:
            return rx.redirect(self._signin_link(ended=was_signed_in))
        return None

    @rx.var
    def session_ended(self) -> bool:
        """The sign-in page was reached because a session ended, not by choice."""
        return self.router.url.query_parameters.get("ended") == "1"

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

    def _begin_submit(self) -> None:
        """A form goes: old errors cleared, busy (the handler yields next, to show it)."""
        self._reset_form()
        self.submitting = True

    def _end_submit(self, result: ApiResult) -> Any:
        """Its answer came: not busy. Signed out meanwhile: the way to sign in (for the
        handler to yield). Any other refusal: its errors, under the form's fields."""
        self.submitting = False
        if result.ok:
            return None
        if result.status == 401:  # it was signed in when the form was sent
            return rx.redirect(self._signin_link(ended=True))
        self._show_errors(result)
        return None


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
        self._begin_submit()
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
