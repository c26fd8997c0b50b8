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


# A purchase this tab sent and has not seen the outcome of, noted in its sessionStorage
# before it is sent: {key, path, at}. Its key is the order request's Idempotency-Key, so
# a purchase whose answer was lost (the web process died) is sent again — by the next
# click, or by the page as it reconnects — and placed once. Older than this, forgotten.
PURCHASE_NOTE = "ticketing.purchase"
PURCHASE_NOTE_SECONDS = 120
_NOTED_PURCHASE = (  # JS: this page's fresh purchase note, or null
    f"(() => {{ try {{ const n = JSON.parse(sessionStorage.getItem('{PURCHASE_NOTE}'));"
    " return n && n.path === location.pathname"
    f" && Date.now() - n.at < {PURCHASE_NOTE_SECONDS * 1000} ? n : null;"
    " } catch (e) { return null; } })()"
)
NOTE_PURCHASE = (  # JS: the key of the purchase this click sends (a pending one's again)
    f"(() => {{ const noted = {_NOTED_PURCHASE}; if (noted) {{ return noted.key; }}"
    " const key = Array.from(crypto.getRandomValues(new Uint8Array(16)),"
    " (b) => b.toString(16).padStart(2, '0')).join('');"
    f" sessionStorage.setItem('{PURCHASE_NOTE}',"
    " JSON.stringify({key, path: location.pathname, at: Date.now()})); return key; })()"
)
PENDING_PURCHASE = f"(({_NOTED_PURCHASE}) || {{key: ''}}).key"  # JS: its key, or ''
FORGET_PURCHASE = f"sessionStorage.removeItem('{PURCHASE_NOTE}')"  # JS: its outcome is seen

READ_STRIPE_CARD = (  # JS: the card field as a Stripe token id, or the error
    "(window.ticketingCard ? window.ticketingCard.stripe.createToken(window.ticketingCard.card)"
    ".then((r) => r.token ? {token: r.token.id} : {error: r.error.message})"
    " : Promise.resolve({error: 'Stripe.js could not be loaded.'}))"
)
