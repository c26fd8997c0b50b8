"""What runs in the browser itself: the calls that must carry or change the HttpOnly
`session` cookie, and full page loads.

The browser posts to auth through the same origin (the gateway or the ingress routes
`/api/users/*` to auth), so auth's own `Set-Cookie` lands there, HttpOnly, and no page
script ever sees the token. Reflex's websocket sends the cookies it had when it
connected; a full page load reconnects it, so the backend sees a sign-in or sign-out.
"""

from __future__ import annotations

import json
from typing import Any

# The shape a `post_json` callback receives: {"status": int, "body": any JSON};
# status 0: the request never got an answer.


def post_json(path: str, body: dict[str, Any] | None = None) -> str:
    """JS: POST JSON to a same-origin path with the browser's cookies; resolves to
    {status, body}, never rejects."""
    payload = json.dumps(json.dumps(body or {}))  # a JS string literal holding the JSON
    return (
        f"fetch({json.dumps(path)}, {{method: 'POST', credentials: 'same-origin', "
        f"headers: {{'content-type': 'application/json'}}, body: {payload}}})"
        ".then(async (r) => ({status: r.status, body: await r.json().catch(() => null)}))"
        ".catch(() => ({status: 0, body: null}))"
    )


def load_page(path: str) -> str:
    """JS: a full page load of a local path (the websocket reconnects with the cookies
    the browser holds now)."""
    return f"window.location.assign({json.dumps(local_path(path))})"


def local_path(value: Any, default: str = "/") -> str:
    """`value` if it is a path on this site, else `default`: a `next=` link can never
    send the user to another site."""
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and len(value) <= 512
        and value.isprintable()
    ):
        return value
    return default


def stripe_mount(publishable_key: str) -> str:
    """JS: Stripe's card field in #card-element (Stripe.js from js.stripe.com)."""
    return (
        "(() => { if (!window.Stripe) { return 'Stripe.js could not be loaded.'; }"
        f" const stripe = window.Stripe({json.dumps(publishable_key)});"
        " const card = stripe.elements().create('card'); card.mount('#card-element');"
        " window.ticketingCard = {stripe, card}; return ''; })()"
    )


READ_STRIPE_CARD = (  # JS: the card field as a Stripe token id, or the error
    "(window.ticketingCard ? window.ticketingCard.stripe.createToken(window.ticketingCard.card)"
    ".then((r) => r.token ? {token: r.token.id} : {error: r.error.message})"
    " : Promise.resolve({error: 'Stripe.js could not be loaded.'}))"
)
