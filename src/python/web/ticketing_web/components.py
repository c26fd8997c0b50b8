"""Layout pieces shared by the pages: header, banner, form fields, page frame."""

from __future__ import annotations

import reflex as rx

from ticketing_web.state import FormState, SessionState

# The centred column the header and every page share.
COLUMN = {"width": "100%", "max_width": "960px", "margin_x": "auto"}


# (label, href, id) of the header's links; on a phone they are one "Menu" instead
SIGNED_IN_LINKS = [
    ("Sell tickets", "/tickets/new", "sell"),
    ("My tickets", "/my-tickets", "my-tickets"),
    ("My orders", "/orders", "orders"),
    ("Sign out", "/auth/signout", "signout"),
    # every session of this user, in every browser (a lost laptop)
    ("Sign out everywhere", "/auth/signout-everywhere", "signout-all"),
]
SIGNED_OUT_LINKS = [("Sign up", "/auth/signup", "signup"), ("Sign in", "/auth/signin", "signin")]
WIDE, NARROW = ["none", "none", "flex"], ["flex", "flex", "none"]  # from 768 px / below


def _links(links: list[tuple[str, str, str]]) -> rx.Component:
    """The links in a row on a wide screen, in a menu on a narrow one (one line)."""
    row = rx.hstack(
        *(rx.link(label, href=href, id=f"nav-{key}") for label, href, key in links),
        spacing="5",
        display=WIDE,
    )
    menu = rx.menu.root(
        rx.menu.trigger(rx.button("Menu", variant="soft", id="nav-menu")),
        rx.menu.content(
            *(
                rx.menu.item(label, on_click=rx.redirect(href), id=f"menu-{key}")
                for label, href, key in links
            )
        ),
    )
    return rx.fragment(row, rx.box(menu, display=NARROW))


def header() -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.link(rx.heading("GitTix", size="6", weight="bold"), href="/", underline="none"),
            rx.spacer(),
            rx.cond(SessionState.signed_in, _links(SIGNED_IN_LINKS), _links(SIGNED_OUT_LINKS)),
            align="center",
            padding_x="1.25em",
            padding_y="0.9em",
            **COLUMN,
        ),
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
        width="100%",
        id="site-header",
    )


def banner() -> rx.Component:
    return rx.cond(
        SessionState.banner != "",
        rx.callout(
            SessionState.banner,
            icon="triangle_alert",
            color_scheme="amber",
            id="banner",
            width="100%",
        ),
    )


def page(*children: rx.Component, title: str) -> rx.Component:
    return rx.box(
        header(),
        rx.vstack(
            banner(),
            rx.heading(title, size="7", margin_bottom="0.5em"),
            *children,
            padding="1.25em",
            spacing="4",
            align="stretch",
            **COLUMN,
        ),
        min_height="100vh",
    )


def list_page(
    *, title: str, loaded: rx.Var, items: rx.Var, table: rx.Component, empty: rx.Component
) -> rx.Component:
    """A page listing the signed-in user's things: a spinner, then the table or what to
    do when there is nothing (with a service down, the banner instead of either)."""
    return page(
        rx.cond(
            loaded,
            rx.cond(items.length() > 0, table, empty),
            rx.cond(SessionState.banner == "", rx.center(rx.spinner(size="3"), padding="2em")),
        ),
        title=title,
    )


def nothing_yet(text: str, link: str, href: str, card_id: str) -> rx.Component:
    """What a list page shows when it has nothing: a sentence and where to go instead."""
    return rx.card(
        rx.text(text, " ", rx.link(link, href=href, underline="always"), "."), id=card_id
    )


def form_errors() -> rx.Component:
    return rx.foreach(
        FormState.form_errors,
        lambda message: rx.callout(
            message, icon="circle_alert", color_scheme="red", class_name="form-error"
        ),
    )


def field(label: str, name: str, **input_props) -> rx.Component:
    """A labelled input with the API's message for this field under it."""
    return rx.vstack(
        rx.text(label, as_="label", size="2", weight="medium", html_for=name),
        rx.input(name=name, id=name, size="3", width="100%", **input_props),
        rx.cond(
            FormState.field_errors.contains(name),
            rx.text(FormState.field_errors[name], color_scheme="red", size="2", id=f"{name}-error"),
        ),
        spacing="1",
        width="100%",
        align="stretch",
    )


def submit(label: str) -> rx.Component:
    return rx.button(label, type="submit", size="3", loading=FormState.submitting, id="submit")


def form_card(*children: rx.Component, on_submit, form_id: str) -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(form_errors(), *children, spacing="4", align="stretch"),
            on_submit=on_submit,
            reset_on_submit=False,
            id=form_id,
        ),
        max_width="480px",
        width="100%",
    )


# Text a user wrote (a title) breaks anywhere rather than overflow its box.
WRAP_ANYWHERE = {"overflow_wrap": "anywhere", "word_break": "break-word"}


def data_table(
    headers: dict[str, str], rows: rx.Var, row, *, table_id: str, card=None
) -> rx.Component:
    """A table: one header cell per title (with its column's width), one row per item
    (`row(item)` builds it). Fixed layout: a long title wraps in its column instead of
    pushing the others out of sight. With `card(item)`: under 520 px a stack of cards
    instead (the table from there up)."""
    table = rx.table.root(
        rx.table.header(
            rx.table.row(*(rx.table.column_header_cell(h, width=w) for h, w in headers.items()))
        ),
        rx.table.body(rx.foreach(rows, row)),
        variant="surface",
        width="100%",
        table_layout="fixed",
        id=table_id,
    )
    if card is None:
        return table
    cards = rx.vstack(
        rx.foreach(rows, card), spacing="2", width="100%", id=f"{table_id}-cards", display=PHONE
    )
    return rx.fragment(rx.box(table, width="100%", display=NOT_PHONE), cards)


PHONE, NOT_PHONE = ["flex", "none"], ["none", "block"]  # below 520 px / from there up


def item_card(title: rx.Var, *lines: rx.Component, class_name: str) -> rx.Component:
    """One item of a list, as a card: its title (wrapping), then its other fields."""
    return rx.card(
        rx.vstack(
            rx.text(title, weight="medium", style=WRAP_ANYWHERE),
            *lines,
            spacing="1",
        ),
        width="100%",
        class_name=class_name,
    )


def connection_overlay() -> rx.Component:
    """While the websocket is down (the web process restarting, the network gone): a
    word a user understands instead of Reflex's socket addresses; the page reconnects
    by itself and its state is where it was."""
    return rx.connection_banner(
        rx.callout(
            "Reconnecting… This page comes back by itself in a moment.",
            icon="refresh_cw",
            color_scheme="amber",
            id="reconnecting",
            role="status",
            position="fixed",
            top="0.5em",
            left="50%",
            transform="translateX(-50%)",
            z_index="1000",
        )
    )


# A tab opened before a new version was deployed asks for the old version's code when
# it moves to another page; the server no longer has it, so React Router reloads the
# page the user is on, and the click seems to do nothing. Remember where a click on
# one of our links goes (for a few seconds), and when the page it was made on is
# reloaded, go there instead: the new version's code comes with it.
NEXT_PAGE_AFTER_RELOAD = """
(() => {
  const key = "ticketing-next-page";
  const pending = JSON.parse(sessionStorage.getItem(key) || "null");
  sessionStorage.removeItem(key);
  const [load] = performance.getEntriesByType("navigation");
  if (pending && load && load.type === "reload" && pending.from === location.href
      && Date.now() - pending.at < 10000) {
    location.replace(pending.to);
    return;
  }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[href]");
    if (link && link.origin === location.origin && link.href !== location.href) {
      const move = {from: location.href, to: link.href, at: Date.now()};
      sessionStorage.setItem(key, JSON.stringify(move));
    }
  }, true);
  window.addEventListener("popstate", () => sessionStorage.removeItem(key));
})();
"""
