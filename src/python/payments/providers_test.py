"""The test provider's ledger and injected faults (what the storm's provider faults
do): a restarted provider finds its charges; `fail` moves nothing; `timeout` moves the
money and loses the answer, and the retry with the same key moves nothing again."""

import pytest

from payments.providers import ProviderUnavailable, TestProvider, read_ledger


async def hold(provider: TestProvider, key: str = "payment-1") -> str:
    charge = await provider.authorize(
        amount_cents=2500, currency="usd", token="tok_visa", idempotency_key=key
    )
    return charge.id


async def test_a_provider_started_again_on_its_ledger_finds_its_charges(tmp_path):
    first = TestProvider(home=tmp_path)
    held, captured = await hold(first, "payment-1"), await hold(first, "payment-2")
    await first.capture(captured, idempotency_key="capture-2")
    again = TestProvider(home=tmp_path)
    assert again.state == {held: "authorized", captured: "captured"}
    assert again.amounts == {held: 2500, captured: 2500}
    with pytest.raises(ProviderUnavailable, match="cannot refund a charge that is authorized"):
        await again.refund(held, idempotency_key="refund-1")  # it knows what it holds


async def test_a_failing_provider_moves_nothing(tmp_path):
    provider = TestProvider(home=tmp_path)
    held = await hold(provider)
    (tmp_path / "fault").write_text("fail")
    with pytest.raises(ProviderUnavailable, match="injected"):
        await provider.capture(held, idempotency_key="capture-1")
    with pytest.raises(ProviderUnavailable, match="injected"):
        await hold(provider, "payment-2")
    assert read_ledger(tmp_path)[0] == {held: "authorized"}


async def test_a_timeout_moves_the_money_and_loses_the_answer(tmp_path, monkeypatch):
    monkeypatch.setattr("payments.providers.LOST_ANSWER_SECONDS", 0.01)
    provider = TestProvider(home=tmp_path)
    held = await hold(provider)
    (tmp_path / "fault").write_text("timeout\n")
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await provider.capture(held, idempotency_key="capture-1")
    assert read_ledger(tmp_path)[0] == {held: "captured"}  # the money moved
    (tmp_path / "fault").unlink()
    await provider.capture(held, idempotency_key="capture-1")  # the retry: no second move
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(lines) == 2  # authorized, captured: once each


async def test_without_a_home_nothing_is_written_and_nothing_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    provider = TestProvider()
    await provider.capture(await hold(provider), idempotency_key="capture-1")
    assert list(tmp_path.iterdir()) == []
