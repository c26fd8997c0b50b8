"""TEST-ONLY: a stateful Stripe-compatible server for the payments tests — localstripe
(PyPI), with the two things the payments service uses that localstripe 1.15.10 lacks,
added here rather than faked by hand:

- `payment_method_data` on `POST /v1/payment_intents` (the card given as a test token,
  `tok_visa`, ...): localstripe takes only a PaymentMethod id, so the card is made a
  PaymentMethod first, from the token's test card number (a `tok_chargeDeclined…`
  card is declined when charged);
- `Idempotency-Key`: a POST repeated with a key it was sent with gets the first answer
  again (`Idempotent-Replayed: true`), not a second object; with other parameters, a
  400 `idempotency_error`, as Stripe answers (Stripe keeps keys 24 h; this, for the
  life of the process);
- `created[gte]` / `created[lte]` on lists (the reconciliation lists a period's
  intents and refunds).

Everything else — intents, manual capture, cancel, refunds, signed webhooks to a URL
registered at `POST /_config/webhooks/<id>` — is localstripe's own.

    stripe_server.pex --port 8420 --from-scratch
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aiohttp import web
from localstripe.errors import UserError
from localstripe.resources import PaymentIntent, PaymentMethod, Refund, StripeObject
from localstripe.server import app, start

# Stripe's test tokens (those payments' test provider knows) and their test cards
TEST_TOKENS = {
    "tok_visa": "4242424242424242",
    "tok_visa_debit": "4000056655665556",
    "tok_mastercard": "5555555555554444",
    "tok_amex": "3782822463100050",  # 15 digits at Stripe; localstripe wants 16
    "tok_discover": "6011111111111117",
    # localstripe declines a charge for one card only (Stripe's "attaches, then is
    # declined when charged"), with "Your card was declined." whatever the reason
    "tok_chargeDeclined": "4000000000000341",
    "tok_chargeDeclinedInsufficientFunds": "4000000000000341",
    "tok_chargeDeclinedExpiredCard": "4000000000000341",
}

_create_intent = PaymentIntent._api_create.__func__  # type: ignore[attr-defined]


def _create_intent_with_card(cls: type, payment_method_data: Any = None, **data: Any) -> Any:
    if payment_method_data is not None:
        card = payment_method_data.get("card") if isinstance(payment_method_data, dict) else None
        token = card.get("token") if isinstance(card, dict) else None
        if payment_method_data.get("type") != "card" or token not in TEST_TOKENS:
            raise UserError(
                400,
                f"No such token: '{token}'",
                {"code": "resource_missing", "param": "payment_method_data[card][token]"},
            )
        card_number = TEST_TOKENS[token]
        method = PaymentMethod._api_create(
            type="card",
            card={"number": card_number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        )
        data["payment_method"] = method.id
    return _create_intent(cls, **data)


PaymentIntent._api_create = classmethod(_create_intent_with_card)  # type: ignore[assignment]


def _with_created_filter(kind: type) -> None:
    """`kind`'s list (its own, or the one it inherits) also takes `created[gte|lte]`."""
    listed_by = kind._api_list_all.__func__  # type: ignore[attr-defined]

    def list_created_within(cls: type, url: str, created: Any = None, **kwargs: Any) -> Any:
        listed = listed_by(cls, url, **kwargs)
        if isinstance(created, dict):
            low, high = int(created.get("gte", 0)), int(created.get("lte", 2**62))
            listed._list = [obj for obj in listed._list if low <= obj.created <= high]
        return listed

    kind._api_list_all = classmethod(list_created_within)  # type: ignore[attr-defined]


for _kind in (StripeObject, Refund):  # Refund lists with a signature of its own
    _with_created_filter(_kind)

_answers: dict[tuple[str, str], tuple[str, bytes, int, str]] = {}


@web.middleware
async def idempotency(request: web.Request, handler: Any) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    body = await request.read()
    entry = (request.headers.get("Authorization", ""), key)
    if entry in _answers:
        path, sent, status, text = _answers[entry]
        if (path, sent) != (request.path, body):
            error = {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same "
                "parameters they were first used with.",
            }
            return web.json_response({"error": error}, status=400)
        headers = {"Idempotent-Replayed": "true"}
        return web.Response(
            status=status, text=text, content_type="application/json", headers=headers
        )
    try:
        response = await handler(request)
    except UserError as refused:  # Stripe keeps a refusal for its key too
        response = refused.to_response()
    if isinstance(response, web.Response) and response.text is not None:
        _answers[entry] = (request.path, body, response.status, response.text)
    return response


app.middlewares.append(idempotency)


async def _announce(_app: web.Application) -> None:
    """One line saying it is about to listen, and where (the harness waits for it)."""
    port = sys.argv[sys.argv.index("--port") + 1] if "--port" in sys.argv else "8420"
    print(json.dumps({"stripe_server": "localstripe", "port": int(port)}), flush=True)


app.on_startup.append(_announce)


def main() -> None:
    start()


if __name__ == "__main__":
    main()
