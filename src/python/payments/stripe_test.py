"""The Stripe adapter against a local stand-in of the Stripe endpoints it uses (Stripe
itself is unreachable from these machines): the requests the official SDK sends —
authorize (a PaymentIntent with manual capture), capture, cancel (void), refund — their
idempotency keys, and how Stripe's error objects map."""

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.servers import LOOPBACK, free_port
from payments.core.config import PaymentsSettings
from payments.providers import CardDeclined, InvalidToken, ProviderUnavailable, StripeProvider

SECRET = "sk_test_stand_in_only"  # a dev placeholder: the stand-in accepts anything


@dataclass
class StandIn:
    """Answers each POST with the next queued (status, body), else as Stripe would."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    answers: list[tuple[int, dict]] = field(default_factory=list)

    async def answer(self, request: Request) -> JSONResponse:
        form = parse_qs((await request.body()).decode())
        self.requests.append(
            {
                "path": request.url.path,
                "form": {k: v[0] for k, v in form.items()},
                "idempotency_key": request.headers.get("idempotency-key"),
                "authorization": request.headers.get("authorization"),
            }
        )
        status, body = self.answers.pop(0) if self.answers else (200, self.default(request))
        return JSONResponse(body, status_code=status)

    @staticmethod
    def default(request: Request) -> dict:
        path = request.url.path
        if path.endswith("/capture"):
            return intent("succeeded")
        if path.endswith("/cancel"):
            return intent("canceled")
        if path == "/v1/refunds":
            return {"id": "re_1", "object": "refund", "status": "succeeded"}
        return intent("requires_capture")


def intent(status: str, intent_id: str = "pi_3OsTandIn") -> dict:
    return {"id": intent_id, "object": "payment_intent", "status": status, "amount": 2000}


def stripe_error(kind: str, message: str, **extra) -> dict:
    return {"error": {"type": kind, "message": message, **extra}}


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    state = StandIn()
    app = Starlette(
        routes=[
            Route(path, state.answer, methods=["POST"])
            for path in (
                "/v1/payment_intents",
                "/v1/payment_intents/{id}/capture",
                "/v1/payment_intents/{id}/cancel",
                "/v1/refunds",
            )
        ]
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    state.url = f"http://{LOOPBACK}:{port}"
    yield state
    server.should_exit = True
    thread.join(10)


@pytest.fixture
async def stripe(stand_in) -> AsyncIterator[StripeProvider]:
    stand_in.requests.clear()
    stand_in.answers.clear()
    provider = StripeProvider(SECRET, stand_in.url)
    yield provider
    await provider.close()


async def charge(provider: StripeProvider, token: str = "tok_visa"):
    return await provider.authorize(
        amount_cents=2050, currency="usd", token=token, idempotency_key="payment-abc"
    )


async def test_an_authorization_is_one_confirmed_manual_capture_intent_with_its_key(
    stripe, stand_in
):
    result = await charge(stripe)
    assert result.id == "pi_3OsTandIn"
    [sent] = stand_in.requests
    assert sent["path"] == "/v1/payment_intents"
    assert sent["authorization"] == f"Bearer {SECRET}"
    assert sent["idempotency_key"] == "payment-abc"
    assert sent["form"] == {
        "amount": "2050",
        "currency": "usd",
        "payment_method_data[type]": "card",
        "payment_method_data[card][token]": "tok_visa",
        "payment_method_types[0]": "card",
        "capture_method": "manual",
        "confirm": "true",
    }


async def test_capture_void_and_refund_name_the_intent_and_carry_their_own_keys(stripe, stand_in):
    await stripe.capture("pi_1", idempotency_key="capture-p1")
    await stripe.void("pi_2", idempotency_key="void-p2")
    await stripe.refund("pi_3", idempotency_key="refund-p3")
    assert [(r["path"], r["idempotency_key"], r["form"]) for r in stand_in.requests] == [
        ("/v1/payment_intents/pi_1/capture", "capture-p1", {}),
        ("/v1/payment_intents/pi_2/cancel", "void-p2", {}),
        ("/v1/refunds", "refund-p3", {"payment_intent": "pi_3"}),
    ]


async def test_a_capture_stripe_fails_is_unavailable_so_the_settler_retries(stripe, stand_in):
    stand_in.answers.extend([(500, stripe_error("api_error", "Something broke"))] * 3)
    with pytest.raises(ProviderUnavailable):
        await stripe.capture("pi_1", idempotency_key="capture-p1")
    assert {r["idempotency_key"] for r in stand_in.requests} == {"capture-p1"}


async def test_a_card_error_is_a_decline_in_stripes_words(stripe, stand_in):
    stand_in.answers.append(
        (402, stripe_error("card_error", "Your card was declined.", code="card_declined"))
    )
    with pytest.raises(CardDeclined, match="Your card was declined."):
        await charge(stripe, "tok_chargeDeclined")


async def test_a_missing_token_is_an_invalid_token(stripe, stand_in):
    stand_in.answers.append(
        (
            400,
            stripe_error(
                "invalid_request_error",
                "No such token: 'tok_nope'",
                code="resource_missing",
                param="payment_method_data[card][token]",
            ),
        )
    )
    with pytest.raises(InvalidToken):
        await charge(stripe, "tok_nope")


async def test_stripe_failing_is_retried_with_the_same_key_then_reported(stripe, stand_in):
    stand_in.answers.extend([(500, stripe_error("api_error", "Something broke"))] * 3)
    with pytest.raises(ProviderUnavailable):
        await charge(stripe)
    keys = {r["idempotency_key"] for r in stand_in.requests}
    assert len(stand_in.requests) == 3 and keys == {"payment-abc"}  # 1 try + 2 retries


async def test_a_payment_needing_an_extra_step_is_declined_not_left_hanging(stripe, stand_in):
    stand_in.answers.append((200, intent("requires_action")))
    with pytest.raises(CardDeclined):
        await charge(stripe)


def test_the_stripe_provider_needs_its_secret_key_at_start(monkeypatch):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be defined when PAYMENT_PROVIDER=stripe"):
        PaymentsSettings(
            mongo_uri="mongodb://x",
            nats_url="nats://x",
            jwt_key="k" * 32,
            payment_provider="stripe",
        )
