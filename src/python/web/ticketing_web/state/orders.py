"""The orders' pages: "My orders" (unpaid ones counting down) and an order's page
(its countdown, the pay form, what became of the payment)."""

from __future__ import annotations

import time
from typing import Any

import reflex as rx

from ticketing_web import browser
from ticketing_web.api import ApiResult
from ticketing_web.state.polling import nothing, poll_while
from ticketing_web.state.session import SERVICES, SETTINGS, FormState, SessionState
from ticketing_web.views import expires_at, order_view, seconds_left, status_word, time_left

TEST_CARD, DECLINED_CARD = "tok_visa", "tok_chargeDeclined"  # the payments test provider's
POLL_EVERY_SECONDS = 3  # an order page re-reads the order's status this often
POLL_AFTER_EXPIRY_SECONDS = 60  # ... and keeps at it this long past zero, to show the cancel


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

    @rx.event
    async def cancel(self, order_id: str) -> Any:
        """An unpaid order let go from the list; the list is read again, and shows what
        became of it (cancelled; or paid, if its payment got there first)."""
        result = await SERVICES.cancel_order(self._session(), order_id)
        if result.status == 401:
            return rx.redirect(self._signin_link())
        return OrderListState.load

    @rx.event(background=True)
    async def tick(self) -> None:
        """Each unpaid order's "m:ss left" counts down every second, until none is
        left waiting or this tab loads another page."""

        def show(_: None) -> bool:
            self.orders = [order_view(o) for o in self._raw]
            return any(o["status_text"].startswith("awaiting") for o in self.orders)

        await poll_while(self, show, read=nothing, every=1)


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
        """Past its time, or cancelled by the service (a buyer's own cancel is not)."""
        status = self.order.get("status", "")
        if self.processing:  # orders is deciding
            return False
        if status == "cancelled":
            return not self.cancelled_by_buyer
        return status == "created" and self.seconds_left <= 0

    @rx.var
    def resumed(self) -> bool:
        """Its purchase was sent again as the page reconnected (`?resumed=1`)."""
        return self.router.url.query_parameters.get("resumed") == "1"

    @rx.var
    def cancelled_by_buyer(self) -> bool:
        """Orders gives a reason only when it cancels an order itself."""
        return self.order.get("status", "") == "cancelled" and not self.order.get("reason")

    @rx.var
    def status_text(self) -> str:
        """The order's status, one state at a time: past its expiry an unpaid order
        reads "expired" at once (orders' own cancel follows within seconds)."""
        status = self.order.get("status", "")
        return "expired" if status == "created" and self.expired else status_word(status)

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
        return f"{time_left(self.seconds_left)} left to pay"  # as "My orders" counts

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
            session, order_id = self._session(), self.order.get("id", "")
        processing = False

        async def read(tick: int) -> ApiResult | None:
            if processing or tick % POLL_EVERY_SECONDS == 0:  # paid: every second
                return await SERVICES.get_order(session, order_id)
            return None

        def show(fresh: ApiResult | None) -> bool:
            nonlocal processing
            if fresh is not None and fresh.ok and isinstance(fresh.data, dict):
                self._show_order(fresh.data)
            else:
                self.seconds_left = seconds_left(self._expires_at)
            processing = self.processing
            past_expiry = time.time() - self._expires_at
            return (
                self.order.get("status") == "created" and past_expiry <= POLL_AFTER_EXPIRY_SECONDS
            )

        await poll_while(self, show, read=read, every=1)

    @rx.event
    async def pay(self, token: str) -> Any:
        self._begin_submit()
        yield
        result = await SERVICES.pay(self._session(), self.order.get("id", ""), token)
        yield self._end_submit(result)
        if result.ok:  # the card is authorized; orders decides, then it is charged
            self.processing = True
            yield OrderState.count_down  # (again: now polling every second)
        else:  # the pay form has no fields of its own: every message is the form's
            self.form_errors = [*self.form_errors, *self.field_errors.values()]
            self.field_errors = {}

    @rx.event
    async def cancel(self) -> Any:
        """The buyer lets the order go: the ticket is back on sale, nothing is charged."""
        self._begin_submit()
        yield
        session, order_id = self._session(), self.order.get("id", "")
        result = await SERVICES.cancel_order(session, order_id)
        yield self._end_submit(result)
        if not result.ok:  # e.g. "Cannot cancel a paid order": the form's own message
            self.form_errors = [*self.form_errors, *self.field_errors.values()]
            self.field_errors = {}
        fresh = await SERVICES.get_order(session, order_id)
        if fresh.ok and isinstance(fresh.data, dict):
            self._show_order(fresh.data)

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
