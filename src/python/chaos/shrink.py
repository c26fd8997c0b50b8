"""Shrinking a failing storm to the fewest faults that still fail it.

Delta debugging over the seed's schedule: each trial is a whole storm with the same
seed (the same users making the same choices) and a subset of the faults, each at its
own time. First the storm with no faults at all (a defect the workload finds alone),
then without each half of the faults, each quarter, ..., each single fault, keeping
every removal after which the storm still fails; the result is a schedule from which
no single fault can go. A storm takes minutes, so the number of trials is what counts:
about twice the number of faults. Then the storm is cut to end soon after its last
fault.

A storm's interleavings are not exactly repeatable (real processes, real time), so a
trial that passes may have been lucky and the result is a small schedule, not always
the smallest; the replay command prints how often the result failed on replays.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chaos.schedule import Fault

Trial = Callable[[list[Fault]], Awaitable[bool]]
"""Runs a storm with these faults: True if it still fails."""


async def smallest_failing(faults: list[Fault], fails: Trial) -> list[Fault]:
    """A subset of `faults` (in order) that still fails, from which no single fault
    can be removed: the trial passes without any one of them."""
    if await fails([]):
        return []
    size = len(faults) // 2
    while size >= 1:
        start = 0
        while start < len(faults):
            without = faults[:start] + faults[start + size :]
            if without and await fails(without):  # (with none at all it passed)
                faults = without
            else:
                start += size
        size //= 2
    return faults


def shorter_storm(faults: list[Fault], seconds: float, *, after: float = 15.0) -> float:
    """The storm's length cut to end `after` seconds past its last fault (the users'
    choices are drawn in the same order, so the storm's start is the same)."""
    end = max((fault.at + fault.hold for fault in faults), default=0.0)
    return min(seconds, round(end + after))
