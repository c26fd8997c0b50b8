"""/tickets/new and /tickets/[ticketId]."""

from __future__ import annotations

import reflex as rx

from ticketing_web import browser
from ticketing_web.components import (
    WRAP_ANYWHERE,
    data_table,
    field,
    form_card,
    form_errors,
    item_card,
    list_page,
    nothing_yet,
    page,
    submit,
)
from ticketing_web.state import MyTicketsState, NewTicketState, TicketDetailState


def new_ticket() -> rx.Component:
    return page(
        form_card(
            field("Title", "title", placeholder="e.g. Concert, front row"),
            field("Price", "price", placeholder="20.00", input_mode="decimal"),
            submit("Submit"),
            on_submit=NewTicketState.create,
            form_id="new-ticket-form",
        ),
        title="Sell a ticket",
    )


def _details() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(
                TicketDetailState.ticket["title"], size="6", id="ticket-title", style=WRAP_ANYWHERE
            ),
            rx.text(
                "Price: ",
                rx.text.strong(TicketDetailState.ticket["price"]),
                size="4",
                id="ticket-price",
            ),
            rx.match(
                TicketDetailState.ticket["status"],
                (
                    "sold",
                    rx.badge(
                        "Sold", color_scheme="gray", size="3", high_contrast=True, id="ticket-sold"
                    ),
                ),
                (
                    "reserved",
                    rx.badge(
                        "Reserved — may come back",
                        color_scheme="amber",
                        high_contrast=True,
                        id="ticket-reserved",
                    ),
                ),
                rx.cond(
                    TicketDetailState.is_owner,
                    rx.badge(
                        "You are selling this ticket", color_scheme="green", high_contrast=True
                    ),
                ),
            ),
            spacing="3",
        ),
        width="100%",
    )


def _edit_form() -> rx.Component:
    return form_card(
        rx.heading("Edit your ticket", size="4"),
        field(
            "Title",
            "title",
            value=TicketDetailState.edit_title,
            on_change=TicketDetailState.set_edit_title,
        ),
        field(
            "Price",
            "price",
            value=TicketDetailState.edit_price,
            on_change=TicketDetailState.set_edit_price,
            input_mode="decimal",
        ),
        rx.cond(
            TicketDetailState.saved,
            rx.callout("Saved", icon="check", color_scheme="green", id="saved"),
        ),
        submit("Save changes"),
        on_submit=TicketDetailState.save,
        form_id="edit-ticket-form",
    )


def _purchase() -> rx.Component:
    """Signed-in non-owners buy; anonymous visitors sign in first and come back here."""
    return rx.cond(
        TicketDetailState.signed_in,
        rx.vstack(
            form_errors(),
            rx.button(
                "Purchase",
                size="3",
                on_click=rx.call_script(browser.NOTE_PURCHASE, callback=TicketDetailState.purchase),
                loading=TicketDetailState.submitting,
                id="purchase",
            ),
            align="start",
            spacing="3",
        ),
        rx.link(
            rx.button("Sign in to buy", size="3", variant="soft"),
            href="/auth/signin?next=/tickets/" + TicketDetailState.ticket["id"],
            id="signin-to-buy",
        ),
    )


def ticket_detail() -> rx.Component:
    return page(
        rx.cond(
            TicketDetailState.not_found,
            rx.callout("This ticket does not exist.", icon="circle_alert", id="not-found"),
            rx.cond(
                TicketDetailState.ticket.contains("id"),
                rx.vstack(
                    rx.cond(
                        TicketDetailState.just_listed,
                        rx.callout(
                            "Listed: your ticket is on sale. Buyers find it on the home page.",
                            icon="check",
                            color_scheme="green",
                            id="listed",
                        ),
                    ),
                    rx.cond(
                        TicketDetailState.not_placed != "",
                        rx.callout(
                            "The purchase you started did not go through: "
                            + TicketDetailState.not_placed
                            + " Nothing was reserved for you or charged.",
                            icon="circle_alert",
                            color_scheme="red",
                            id="not-placed",
                        ),
                    ),
                    _details(),
                    rx.cond(
                        TicketDetailState.ticket["status"] == "available",
                        rx.cond(TicketDetailState.is_owner, _edit_form(), _purchase()),
                        rx.cond(
                            TicketDetailState.is_owner,
                            rx.text(
                                "A buyer holds or bought this ticket: it cannot be edited.",
                                id="not-editable",
                            ),
                        ),
                    ),
                    spacing="4",
                    width="100%",
                ),
                rx.center(rx.spinner(size="3"), padding="2em"),
            ),
        ),
        title="Ticket",
    )


def _my_ticket_row(ticket: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(ticket["title"], style=WRAP_ANYWHERE),
        rx.table.cell(ticket["price"]),
        rx.table.cell(ticket["state"], class_name="my-ticket-state"),
        rx.table.cell(
            rx.cond(
                ticket["why_not"] == "",
                rx.link("Edit", href="/tickets/" + ticket["id"].to(str)),
                rx.text(ticket["why_not"], size="1", color_scheme="gray"),
            ),
            class_name="my-ticket-action",
        ),
        class_name="my-ticket-row",
    )


def _my_ticket_card(ticket: rx.Var) -> rx.Component:
    return item_card(
        ticket["title"],
        rx.text(ticket["price"], " · ", ticket["state"], class_name="my-ticket-card-state"),
        rx.cond(
            ticket["why_not"] == "",
            rx.link("Edit", href="/tickets/" + ticket["id"].to(str)),
            rx.text(ticket["why_not"], size="1", color_scheme="gray"),
        ),
        class_name="my-ticket-card",
    )


def my_tickets() -> rx.Component:
    table = data_table(
        {"Ticket": "34%", "Price": "16%", "State": "25%", "": "25%"},
        MyTicketsState.tickets,
        _my_ticket_row,
        table_id="my-tickets",
        card=_my_ticket_card,
    )
    empty = nothing_yet(
        "You have not listed a ticket yet.", "Sell one", "/tickets/new", "no-my-tickets"
    )
    return list_page(
        title="My tickets",
        loaded=MyTicketsState.loaded,
        items=MyTicketsState.tickets,
        table=table,
        empty=empty,
    )
