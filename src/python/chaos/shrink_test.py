"""Shrinking a schedule with trials decided by a rule instead of storms: it
finds the faults a failure needs, and none it does not."""

from __future__ import annotations

from chaos.schedule import Fault, schedule
from chaos.shrink import shorter_storm, smallest_failing

FAULTS = schedule(12, 120)


class Rule:
    """Fails when every fault of `needed` is in the trial; counts the trials."""

    def __init__(self, *needed: Fault) -> None:
        self.needed, self.trials = set(needed), 0

    async def __call__(self, faults: list[Fault]) -> bool:
        self.trials += 1
        return self.needed <= set(faults)


async def test_two_faults_that_fail_only_together_are_what_is_left():
    assert len(FAULTS) >= 10
    needed = FAULTS[2], FAULTS[-3]
    rule = Rule(*needed)
    assert await smallest_failing(FAULTS, rule) == list(needed)
    assert rule.trials <= len(FAULTS) * 2  # storms take minutes: not the 2^n subsets


async def test_one_fault_alone_is_found_and_a_storm_failing_without_faults_needs_none():
    assert await smallest_failing(FAULTS, Rule(FAULTS[5])) == [FAULTS[5]]
    assert await smallest_failing(FAULTS, Rule()) == []


async def test_a_failure_that_needs_every_fault_keeps_every_fault():
    few = FAULTS[:3]
    assert await smallest_failing(few, Rule(*few)) == few


def test_the_storm_is_cut_to_end_soon_after_its_last_fault():
    fault = Fault(at=20.0, kind="kill", target="orders", hold=3.0)
    assert shorter_storm([fault], 120) == 38
    assert shorter_storm([], 120) == 15
    assert shorter_storm([Fault(110.0, "kill", "orders", 3.0)], 120) == 120
