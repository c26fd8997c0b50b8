"""How a tab's state follows the services while a page is shown: one poll loop, used
by every live page (the ticket list and page, the seller's tickets, the orders and
their countdowns) and by the session check."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def poll_while(
    state: Any,
    show: Callable[[T], Any],
    *,
    read: Callable[[int], Awaitable[T]],
    every: float,
    view: str = "_live_view",
) -> Any:
    """From a background event: every `every` seconds, `read(tick)` (a service call,
    outside the state's lock; tick 1, 2, ...), then `show(result)` under the lock, for
    as long as this page view is the tab's latest. `show` answers True to go on;
    anything else ends the poll and is its outcome (an event to run, or None). Loading
    any page claims the view anew (`SessionState.load_user`), which ends the poll of
    the page before at its next step: one poll per kind per tab, never a pile."""
    async with state:
        mine = uuid.uuid4().hex
        setattr(state, view, mine)
    tick = 0
    while True:
        await asyncio.sleep(every)
        tick += 1
        fresh = await read(tick)
        async with state:
            if getattr(state, view) != mine:
                return None
            outcome = show(fresh)
            if outcome is not True:
                setattr(state, view, "")
                return outcome


async def nothing(_tick: int) -> None:
    """A `read` for a poll that only counts time (a countdown)."""
