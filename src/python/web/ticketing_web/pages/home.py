"""/ — tickets for sale."""

from __future__ import annotations

import reflex as rx

from ticketing_web.components import WRAP_ANYWHERE, data_table, item_card, page
from ticketing_web.state import TicketListState


def ticket_row(ticket: rx.Var) -> rx.Component:
    # the title opens the ticket too: a target as wide as the column, not only "View"
    return rx.table.row(
        rx.table.cell(
            rx.link(
                ticket["title"], href="/tickets/" + ticket["id"].to(str), class_name="ticket-link"
            ),
            style=WRAP_ANYWHERE,
        ),
        rx.table.cell(ticket["price"], class_name="ticket-price"),
        rx.table.cell(rx.link("View", href="/tickets/" + ticket["id"].to(str))),
        class_name="ticket-row",
    )


def search_form() -> rx.Component:
    """Words, a price range and an order; submitted into the URL (`TicketListState.find`)."""

    def labelled(label: str, control: rx.Component, name: str) -> rx.Component:
        return rx.vstack(
            rx.text(label, as_="label", size="1", weight="medium", html_for=name),
            control,
            spacing="1",
        )

    return rx.form(
        rx.flex(
            labelled(
                "Search",
                rx.input(name="q", id="q", aria_label="Search", placeholder="e.g. jazz",
                         value=TicketListState.q_field, on_change=TicketListState.set_q_field),
                "q",
            ),
            labelled(
                "Min price",
                rx.input(name="min", id="min", aria_label="Min price", type="number", min=0, step="0.01", width="7em",
                         value=TicketListState.min_field, on_change=TicketListState.set_min_field),
                "min",
            ),
            labelled(
                "Max price",
                rx.input(name="max", id="max", aria_label="Max price", type="number", min=0, step="0.01", width="7em",
                         value=TicketListState.max_field, on_change=TicketListState.set_max_field),
                "max",
            ),
            rx.button("Find", type="submit", id="find"),
            gap="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=TicketListState.find,
        id="search-form",
    )  # fmt: skip


def sort_links() -> rx.Component:
    def link(choice: rx.Var) -> rx.Component:
        return rx.cond(
            choice["current"] == "true",
            rx.text(choice["label"], weight="bold", size="2", id="sort-" + choice["value"]),
            rx.link(choice["label"], href=choice["href"], size="2", id="sort-" + choice["value"]),
        )

    return rx.hstack(
        rx.text("Sort:", size="2"), rx.foreach(TicketListState.sort_links, link), spacing="3"
    )


def ticket_card(ticket: rx.Var) -> rx.Component:
    return item_card(
        ticket["title"],
        rx.hstack(
            rx.text(ticket["price"], class_name="ticket-card-price"),
            rx.link("View", href="/tickets/" + ticket["id"].to(str)),
            justify="between",
            width="100%",
        ),
        class_name="ticket-card",
    )


def index() -> rx.Component:
    table = data_table(
        {"Title": "60%", "Price": "22%", "Link": "18%"},
        TicketListState.tickets,
        ticket_row,
        table_id="tickets",
        card=ticket_card,
    )
    results = rx.vstack(
        rx.hstack(
            rx.text(TicketListState.count_text, id="ticket-count", size="2"),
            rx.spacer(),
            sort_links(),
            width="100%",
            wrap="wrap",
        ),
        table,
        rx.cond(
            TicketListState.next_cursor != "",
            rx.button("Load more", on_click=TicketListState.load_more, id="load-more", variant="soft"),
        ),
        spacing="3",
        width="100%",
        align="stretch",
    )  # fmt: skip
    nothing_found = rx.card(rx.text("No tickets match this search.", size="3"), id="no-match")
    empty = rx.card(
        rx.vstack(
            rx.text("No tickets for sale yet.", size="4", weight="medium"),
            rx.text(
                "Got one you can't use? ",
                rx.link("Sell it here", href="/tickets/new", underline="always"),
                ".",
            ),
            spacing="2",
        ),
        id="no-tickets",
    )
    searching = TicketListState.search.length() > 0
    return page(
        search_form(),
        rx.cond(
            TicketListState.search_error != "",
            rx.callout(TicketListState.search_error, color_scheme="red", id="search-error"),
        ),
        rx.cond(
            TicketListState.loaded,
            # With a service down the banner says so; "no tickets" would be untrue.
            rx.cond(
                TicketListState.tickets.length() > 0,
                results,
                rx.cond(
                    TicketListState.banner == "",
                    rx.cond(searching, nothing_found, empty),
                ),
            ),
            rx.center(rx.spinner(size="3"), padding="2em"),
        ),
        title="Tickets",
    )


def not_found() -> rx.Component:
    """Any unknown path: the site's frame (header and all), and the way back."""
    return page(
        rx.card(
            rx.vstack(
                rx.text("There is no page at this address.", size="4", weight="medium"),
                rx.link("See the tickets for sale", href="/"),
                spacing="2",
            ),
            id="page-not-found",
        ),
        title="Page not found",
    )
