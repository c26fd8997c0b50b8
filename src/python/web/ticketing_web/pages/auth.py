"""/auth/signup, /auth/signin, /auth/signout."""

from __future__ import annotations

import reflex as rx

from ticketing_web.components import field, form_card, page, submit
from ticketing_web.state import AuthFormState


def _credentials_form(action, button: str, form_id: str) -> rx.Component:
    return form_card(
        field(
            "Email address",
            "email",
            type="email",
            placeholder="you@example.com",
            auto_complete="email",
        ),
        field("Password", "password", type="password", placeholder="4 to 20 characters"),
        submit(button),
        on_submit=action,
        form_id=form_id,
    )


def signup() -> rx.Component:
    return page(_credentials_form(AuthFormState.signup, "Sign up", "signup-form"), title="Sign up")


def signin() -> rx.Component:
    ended = rx.cond(
        AuthFormState.session_ended,
        rx.callout(
            "Your session ended — you were signed out, here or on another device. "
            "Sign in again to go on.",
            icon="info",
            id="session-ended",
        ),
    )
    return page(
        ended, _credentials_form(AuthFormState.signin, "Sign in", "signin-form"), title="Sign in"
    )


def signout() -> rx.Component:
    return page(rx.text("Signing you out…"), title="Sign out")


def signout_everywhere() -> rx.Component:
    return page(rx.text("Signing you out of every browser…"), title="Sign out everywhere")
