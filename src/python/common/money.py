"""Money: integer cents everywhere inside, JSON numbers (20, 20.5, 19.99) at the edges,
as the original app shows prices. Never through float arithmetic."""

from __future__ import annotations

from decimal import Decimal


def cents_to_price(cents: int) -> int | float:
    """20 for 2000 cents, 20.5 for 2050."""
    return cents // 100 if cents % 100 == 0 else cents / 100


def price_to_cents(price: int | float) -> int:
    """The exact cents of a price that has at most 2 decimals (as every price on the
    stream has: the tickets service validates them); ValueError for anything else."""
    cents = Decimal(str(price)) * 100  # the shortest repr: 19.99 stays 19.99
    if cents != cents.to_integral_value():
        raise ValueError(f"{price} is not a whole number of cents")
    return int(cents)
