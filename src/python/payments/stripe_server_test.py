"""StripeProvider (the official SDK) against a stateful Stripe-compatible server
(localstripe, harness.stripe): each move Stripe's state checked after it, and each move
whose reply is lost on the way back (a proxy drops it) retried by the SDK with its
idempotency key — one intent per payment, captured once, refunded once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from harness.servers import free_port
from harness.stripe import SECRET_KEY, StripeServer
from payments.providers import CardDeclined, InvalidToken, StripeProvider


class ReplyDropper:
    """A TCP proxy to the server that, for each path ending named in `drop`, lets the
    first request through and drops its reply: the call happened, the client never
    hears so (a connection lost on the way back)."""

    def __init__(self, upstream_port: int, drop: list[str]) -> None:
        self.upstream_port, self.drop, self.dropped = upstream_port, list(drop), []
        self.port = free_port()

    async def __aenter__(self) -> ReplyDropper:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            body = await reader.readexactly(length)
            upstream_reader, upstream = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port
            )
            closing = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
            upstream.write(closing + body)
            reply = await upstream_reader.read()  # the whole answer (the server closes)
            upstream.close()
            path = head.split(b" ")[1].decode().split("?")[0]
            ending = next((e for e in self.drop if path.endswith(e)), None)
            if ending is not None:
                self.drop.remove(ending)
                self.dropped.append(path)
                return  # the reply is lost
            writer.write(reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def provider(stripe_server) -> AsyncIterator[tuple[StripeProvider, ReplyDropper]]:
    async with ReplyDropper(
        stripe_server.port, ["/payment_intents", "/capture", "/cancel", "/refunds"]
    ) as proxy:
        yield StripeProvider(SECRET_KEY, f"http://127.0.0.1:{proxy.port}"), proxy


def intent(server: StripeServer, intent_id: str) -> dict:
    return server.get(f"/v1/payment_intents/{intent_id}")


async def test_each_move_whose_reply_is_lost_is_made_once(provider, stripe_server):
    stripe_provider, proxy = provider
    before = len(await asyncio.to_thread(stripe_server.intents))
    held = await stripe_provider.authorize(
        amount_cents=2550, currency="usd", token="tok_visa", idempotency_key="pay-1"
    )
    assert len(await asyncio.to_thread(stripe_server.intents)) == before + 1  # one intent, not two
    assert (await asyncio.to_thread(intent, stripe_server, held.id))["status"] == "requires_capture"
    await stripe_provider.capture(held.id, idempotency_key="capture-1")
    assert (await asyncio.to_thread(intent, stripe_server, held.id))["status"] == "succeeded"
    await stripe_provider.refund(held.id, idempotency_key="refund-1")
    assert len(await asyncio.to_thread(stripe_server.refunds, held.id)) == 1  # refunded once
    other = await stripe_provider.authorize(
        amount_cents=900, currency="usd", token="tok_visa", idempotency_key="pay-2"
    )
    await stripe_provider.void(other.id, idempotency_key="void-2")
    assert (await asyncio.to_thread(intent, stripe_server, other.id))["status"] == "canceled"
    assert sorted(p.rsplit("/", 1)[-1] for p in proxy.dropped) == [
        "cancel",
        "capture",
        "payment_intents",
        "refunds",
    ]


async def test_a_move_sent_again_later_with_its_key_changes_nothing(stripe_server):
    """The settler retries a move whose outcome it did not learn, with the same key."""
    stripe_provider = StripeProvider(SECRET_KEY, stripe_server.url)
    held = await stripe_provider.authorize(
        amount_cents=700, currency="usd", token="tok_visa", idempotency_key="pay-3"
    )
    again = await stripe_provider.authorize(
        amount_cents=700, currency="usd", token="tok_visa", idempotency_key="pay-3"
    )
    assert again.id == held.id
    for _ in range(2):
        await stripe_provider.capture(held.id, idempotency_key="capture-3")
        await stripe_provider.refund(held.id, idempotency_key="refund-3")
    assert (await asyncio.to_thread(intent, stripe_server, held.id))["status"] == "succeeded"
    assert len(await asyncio.to_thread(stripe_server.refunds, held.id)) == 1


async def test_a_declined_card_and_an_unknown_token_hold_nothing(stripe_server):
    stripe_provider = StripeProvider(SECRET_KEY, stripe_server.url)
    before = {i["id"] for i in await asyncio.to_thread(stripe_server.intents)}
    with pytest.raises(CardDeclined, match="Your card was declined."):
        await stripe_provider.authorize(
            amount_cents=700, currency="usd", token="tok_chargeDeclined", idempotency_key="pay-4"
        )
    with pytest.raises(InvalidToken):
        await stripe_provider.authorize(
            amount_cents=700, currency="usd", token="tok_nope", idempotency_key="pay-5"
        )
    new = [i for i in await asyncio.to_thread(stripe_server.intents) if i["id"] not in before]
    assert [i["status"] for i in new] == ["requires_payment_method"]  # tried, nothing held
