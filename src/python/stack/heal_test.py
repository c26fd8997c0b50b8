"""`./run` heals like Kubernetes: a dead process is started again with backoff, and a
crash loop stops the stack (fake processes; the real one: main_test.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.main import CRASH_LOOP_COUNT, Crashes, Stack, StackError


class FakeProcess:
    """Dies when told to; `restart()` brings it back (or fails, if `broken`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.log_path = Path(f"/tmp/{name}.log")  # noqa: S108 (only printed)
        self.process = None
        self.running = True
        self.broken = False
        self.restarts = 0

    def restart(self) -> FakeProcess:
        self.restarts += 1
        if self.broken:
            raise RuntimeError("did not start")
        self.running = True
        return self


def stack_of(*names: str) -> tuple[Stack, dict[str, FakeProcess]]:
    stack = Stack(Path("/nonexistent"), 8080)
    processes = {name: FakeProcess(name) for name in names}
    stack.processes = list(processes.values())  # type: ignore[arg-type]
    return stack, processes


def test_a_dead_process_is_started_again_after_a_delay(capsys):
    stack, processes = stack_of("nats", "tickets")
    processes["tickets"].running = False
    stack.heal(now=100.0)
    assert processes["tickets"].restarts == 0  # not at once: after the first delay
    assert "tickets exited (code None); starting it again in 1 s" in capsys.readouterr().out
    stack.heal(now=100.5)
    assert processes["tickets"].restarts == 0
    stack.heal(now=101.0)
    assert processes["tickets"].restarts == 1 and processes["tickets"].running
    assert "tickets is running again" in capsys.readouterr().out
    assert processes["nats"].restarts == 0


def test_the_delay_doubles_while_it_keeps_dying_then_the_loop_stops_the_stack():
    stack, processes = stack_of("orders")
    orders = processes["orders"]
    now, delays = 0.0, []
    with pytest.raises(StackError, match="orders crashed 5 times within 60 s"):
        while True:
            orders.running = False
            stack.heal(now)  # found dead: counted
            delays.append(stack.crashes["orders"].retry_at - now)
            now = stack.crashes["orders"].retry_at
            stack.heal(now)  # started again ...
            now += 0.5  # ... and dies half a second later
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert orders.restarts == CRASH_LOOP_COUNT - 1


def test_a_start_that_fails_counts_as_a_crash():
    stack, processes = stack_of("web")
    web = processes["web"]
    web.running, web.broken = False, True
    stack.heal(now=0.0)
    stack.heal(now=1.0)  # the restart fails
    assert web.restarts == 1 and not web.running
    stack.heal(now=1.0)  # found dead again: a second crash, a longer delay
    assert stack.crashes["web"].retry_at == 3.0


def test_crashes_older_than_the_window_are_forgotten():
    crashes = Crashes()
    for moment in (0.0, 10.0, 20.0, 30.0):
        crashes.record(moment)
    assert crashes.record(100.0) == 1.0  # the old four are outside the minute
    assert not crashes.looping
