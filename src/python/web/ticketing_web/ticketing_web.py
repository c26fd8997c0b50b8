"""The Reflex app: the original client's pages and routes."""

from __future__ import annotations

import os
from pathlib import Path

import reflex as rx

from common.observability.tracing import configure_tracing
from ticketing_web.caching import cache_by_kind
from ticketing_web.components import NEXT_PAGE_AFTER_RELOAD, connection_overlay
from ticketing_web.pages import auth, home, orders, tickets
from ticketing_web.paths import pages_without_trailing_slash
from ticketing_web.state import (
    FormState,
    MyTicketsState,
    OrderListState,
    OrderState,
    SessionState,
    TicketDetailState,
    TicketListState,
)

# The backend's calls to the services start the traces (README, "Traces"): exported
# like the services' (OTLP to OTEL_EXPORTER_OTLP_ENDPOINT, JSON lines to TRACES_DIR).
configure_tracing(
    "web",
    traces_dir=Path(os.environ["TRACES_DIR"]) if os.environ.get("TRACES_DIR") else None,
    otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
)

app = rx.App(  # theme: rxconfig.py
    api_transformer=[pages_without_trailing_slash, cache_by_kind],
    head_components=[rx.script(NEXT_PAGE_AFTER_RELOAD)],
)
# in place of Reflex's connection toast (its socket addresses and errors): ours
app.app_wraps[(5, "Overlay")] = lambda stateful: connection_overlay() if stateful else None
WATCH = SessionState.watch_session  # last on every page a signed-in user may idle on
app.add_page(home.index, route="/", title="GitTix | Tickets", on_load=[TicketListState.load, WATCH])
app.add_page(
    home.not_found,
    route="404",
    title="GitTix | Page not found",
    on_load=[SessionState.load_user, WATCH],
)
app.add_page(
    auth.signup, route="/auth/signup", title="GitTix | Sign up", on_load=FormState.open_form
)
app.add_page(
    auth.signin, route="/auth/signin", title="GitTix | Sign in", on_load=FormState.open_form
)
app.add_page(
    auth.signout, route="/auth/signout", title="GitTix | Sign out", on_load=SessionState.signout
)
app.add_page(
    auth.signout_everywhere,
    route="/auth/signout-everywhere",
    title="GitTix | Sign out everywhere",
    on_load=SessionState.signout_everywhere,
)
app.add_page(
    tickets.new_ticket,
    route="/tickets/new",
    title="GitTix | Sell a ticket",
    on_load=[FormState.open_signed_in_form, WATCH],
)
app.add_page(
    tickets.ticket_detail,
    route="/tickets/[ticketId]",
    title="GitTix | Ticket",
    on_load=[TicketDetailState.load, WATCH],
)
app.add_page(
    orders.order_list,
    route="/orders",
    title="GitTix | My orders",
    on_load=[OrderListState.load, WATCH],
)
app.add_page(
    tickets.my_tickets,
    route="/my-tickets",
    title="GitTix | My tickets",
    on_load=[MyTicketsState.load, WATCH],
)
app.add_page(
    orders.order_detail,
    route="/orders/[orderId]",
    title="GitTix | Order",
    on_load=[OrderState.load, WATCH],
)
