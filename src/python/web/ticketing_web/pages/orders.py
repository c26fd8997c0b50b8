"""/orders (my orders) and /orders/[orderId] (countdown and pay)."""

from __future__ import annotations

import reflex as rx

from ticketing_web.components import (
    WRAP_ANYWHERE,
    data_table,
    form_errors,
    item_card,
    list_page,
    nothing_yet,
    page,
)
from ticketing_web.state import (
    DECLINED_CARD,
    SETTINGS,
    TEST_CARD,
    OrderListState,
    OrderState,
)

STATUS_COLOURS = {"created": "amber", "complete": "green", "cancelled": "gray"}
MONEY_RETURNED = {  # a cancelled order's payment, as the buyer reads it
    "voided": "Your card was not charged: the hold on it was released.",
    "refunded": "Refunded: the money went back to your card.",
}


def _status_badge(order: rx.Var) -> rx.Component:
    return rx.match(
        order["status"],
        *[
            (status, rx.badge(order["status_text"], color_scheme=c, high_contrast=True))
            for status, c in STATUS_COLOURS.items()
        ],
        rx.badge(order["status_text"], high_contrast=True),
    )


def _list_cancel(order: rx.Var) -> rx.Component:
    """An unpaid order can be let go from the list too."""
    return rx.cond(
        order["status"] == "created",
        rx.button(
            "Cancel",
            on_click=OrderListState.cancel(order["id"]),
            size="1",
            variant="ghost",
            color_scheme="gray",
            class_name="order-cancel",
        ),
    )


def order_row(order: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(order["title"], style=WRAP_ANYWHERE),
        rx.table.cell(order["price"]),
        rx.table.cell(_status_badge(order), class_name="order-status"),
        rx.table.cell(
            rx.hstack(rx.link("View", href="/orders/" + order["id"].to(str)), _list_cancel(order))
        ),
        class_name="order-row",
    )


def order_card(order: rx.Var) -> rx.Component:
    return item_card(
        order["title"],
        rx.hstack(
            rx.text(order["price"]),
            _status_badge(order),
            spacing="3",
            class_name="order-card-status",
        ),
        rx.hstack(rx.link("View", href="/orders/" + order["id"].to(str)), _list_cancel(order)),
        class_name="order-card",
    )


def order_list() -> rx.Component:
    table = data_table(
        {"Ticket": "36%", "Price": "18%", "Status": "30%", "Link": "16%"},
        OrderListState.orders,
        order_row,
        table_id="orders",
        card=order_card,
    )
    empty = nothing_yet("You have no orders yet.", "Find a ticket", "/", "no-orders")
    return list_page(
        title="My orders",
        loaded=OrderListState.loaded,
        items=OrderListState.orders,
        table=table,
        empty=empty,
    )


def _test_cards() -> rx.Component:
    return rx.vstack(
        rx.callout(
            "Test mode — no real money. Pick one of the payment provider's test cards.",
            icon="info",
            color_scheme="blue",
            id="test-mode",
        ),
        rx.hstack(
            rx.button(
                "Pay with test Visa",
                size="3",
                on_click=OrderState.pay(TEST_CARD),
                loading=OrderState.submitting,
                id="pay-test-card",
            ),
            rx.button(
                "Try a declined test card",
                size="3",
                variant="outline",
                color_scheme="red",
                on_click=OrderState.pay(DECLINED_CARD),
                loading=OrderState.submitting,
                id="pay-declined-card",
            ),
            spacing="3",
            wrap="wrap",
        ),
        spacing="3",
        align="stretch",
    )


def _stripe_card() -> rx.Component:
    return rx.vstack(
        rx.script(src="https://js.stripe.com/v3/"),
        rx.box(
            id="card-element",
            on_mount=OrderState.mount_card,
            padding="0.75em",
            border=f"1px solid {rx.color('gray', 6)}",
            border_radius="6px",
        ),
        rx.button(
            "Pay",
            size="3",
            on_click=OrderState.pay_with_card,
            loading=OrderState.submitting,
            id="pay-card",
        ),
        spacing="3",
        align="stretch",
    )


def _pay_form() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Pay", size="4"),
            form_errors(),
            # chosen when the page is built: Stripe.js only where it is configured
            _stripe_card() if SETTINGS.stripe_publishable_key else _test_cards(),
            spacing="4",
            align="stretch",
        ),
        max_width="520px",
        width="100%",
        id="pay-form",
    )


def _over(text: str, icon: str, callout_id: str) -> rx.Component:
    """An order that can no longer be paid: why, and the way back to its ticket."""
    return rx.callout(
        rx.text(
            text + " ",
            rx.link("Back to the ticket", href="/tickets/" + OrderState.order["ticketId"]),
        ),
        icon=icon,
        color_scheme="gray",
        id=callout_id,
    )


def _expired() -> rx.Component:
    return _over("This order has expired: the ticket is back on sale.", "clock", "order-expired")


def _you_cancelled() -> rx.Component:
    return _over(
        "You cancelled this order: nothing was charged, and the ticket is back on sale.",
        "x",
        "order-cancelled",
    )


def _cancel_button() -> rx.Component:
    return rx.button(
        "Cancel order",
        on_click=OrderState.cancel,
        variant="outline",
        color_scheme="gray",
        loading=OrderState.submitting,
        id="cancel-order",
    )


def _cancelled_note() -> rx.Component:
    """Why the service cancelled it, and what became of the money."""
    return rx.vstack(
        rx.cond(
            OrderState.reason_text != "",
            rx.callout(OrderState.reason_text, icon="info", id="order-reason"),
        ),
        *[
            rx.cond(
                OrderState.order["payment"] == state,
                rx.callout(text, icon="check", color_scheme="gray", id=f"payment-{state}"),
            )
            for state, text in MONEY_RETURNED.items()
        ],
        width="100%",
    )


def _details() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(OrderState.order["title"], size="6", id="order-title", style=WRAP_ANYWHERE),
            rx.text(
                "Price: ", rx.text.strong(OrderState.order["price"]), size="4", id="order-price"
            ),
            rx.text("Status: ", rx.text.strong(OrderState.status_text), id="order-status"),
            spacing="3",
        ),
        width="100%",
    )


def order_detail() -> rx.Component:
    body = rx.vstack(
        rx.cond(
            OrderState.resumed,
            rx.callout(
                "Your purchase went through, once: the connection dropped while it was "
                "being placed, and it was finished when the page came back.",
                icon="check",
                color_scheme="green",
                id="purchase-resumed",
            ),
        ),
        _details(),
        rx.cond(
            OrderState.order["status"] == "complete",
            rx.callout(
                "Paid. Enjoy the event!", icon="check", color_scheme="green", id="order-paid"
            ),
        ),
        rx.cond(
            OrderState.processing,
            rx.callout(
                "Payment processing… your card is authorized; it is charged once the order "
                "is confirmed.",
                icon="clock",
                color_scheme="blue",
                id="payment-processing",
            ),
        ),
        rx.cond(OrderState.order["status"] == "cancelled", _cancelled_note()),
        rx.cond(OrderState.expired, _expired()),
        rx.cond(OrderState.cancelled_by_buyer, _you_cancelled()),
        rx.cond(
            OrderState.payable,
            rx.vstack(
                rx.text(OrderState.countdown_text, size="4", weight="medium", id="countdown"),
                _pay_form(),
                _cancel_button(),
                spacing="4",
                width="100%",
            ),
        ),
        spacing="4",
        width="100%",
    )
    return page(
        rx.cond(
            OrderState.not_found,
            rx.callout("This order does not exist.", icon="circle_alert", id="not-found"),
            rx.cond(
                OrderState.not_yours,
                rx.callout(
                    "This order is another user's: you can only see your own orders.",
                    icon="circle_alert",
                    id="not-yours",
                ),
                rx.cond(
                    OrderState.order.contains("id"),
                    body,
                    rx.cond(
                        OrderState.banner == "", rx.center(rx.spinner(size="3"), padding="2em")
                    ),
                ),
            ),
        ),
        title="Order",
    )
