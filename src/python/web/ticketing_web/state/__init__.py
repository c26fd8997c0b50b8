"""Reflex state, one module per group of pages (as `pages/`): `session` (the signed-in
user, forms, sign-in and sign-up), `tickets`, `orders`."""

from ticketing_web.state.orders import DECLINED_CARD, TEST_CARD, OrderListState, OrderState
from ticketing_web.state.session import SETTINGS, AuthFormState, FormState, SessionState
from ticketing_web.state.tickets import (
    MyTicketsState,
    NewTicketState,
    TicketDetailState,
    TicketListState,
)

__all__ = [
    "DECLINED_CARD",
    "SETTINGS",
    "TEST_CARD",
    "AuthFormState",
    "FormState",
    "MyTicketsState",
    "NewTicketState",
    "OrderListState",
    "OrderState",
    "SessionState",
    "TicketDetailState",
    "TicketListState",
]
