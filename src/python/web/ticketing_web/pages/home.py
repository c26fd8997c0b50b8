"""/ — tickets for sale."""

from __future__ import annotations

import reflex as rx

from ticketing_web.components import data_table, page
from ticketing_web.state import TicketListState


def ticket_row(ticket: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(ticket["title"]),
        rx.table.cell(ticket["price"], class_name="ticket-price"),
        rx.table.cell(rx.link("View", href="/tickets/" + ticket["id"].to(str))),
        class_name="ticket-row",
    )


def index() -> rx.Component:
    table = data_table(
        ["Title", "Price", "Link"], TicketListState.tickets, ticket_row, table_id="tickets"
    )
    empty = rx.card(
        rx.vstack(
            rx.text("No tickets for sale yet.", size="4", weight="medium"),
            rx.text("Got one you can't use? ", rx.link("Sell it here", href="/tickets/new"), "."),
            spacing="2",
        ),
        id="no-tickets",
    )
    return page(
        rx.cond(
            TicketListState.loaded,
            # With a service down the banner says so; "no tickets" would be untrue.
            rx.cond(
                TicketListState.tickets.length() > 0,
                table,
                rx.cond(TicketListState.banner == "", empty),
            ),
            rx.center(rx.spinner(size="3"), padding="2em"),
        ),
        title="Tickets",
    )
