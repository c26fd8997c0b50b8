import asyncio
import threading
import time

import pytest

from auth.core.passwords import Passwords, max_concurrent_hashes
from common.errors import BusyError

FAST = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}


async def test_hash_then_check():
    passwords = Passwords(**FAST)
    stored = await passwords.hash("secret")
    assert stored.startswith("$argon2id$")
    assert (await passwords.check(stored, "secret")).ok
    assert not (await passwords.check(stored, "wrong")).ok


async def test_unknown_user_always_fails_after_a_real_verification():
    passwords = Passwords(**FAST)
    assert not (await passwords.check(None, "anything")).ok


async def test_a_corrupt_stored_hash_fails_instead_of_raising():
    assert not (await Passwords(**FAST).check("not-a-hash", "secret")).ok


async def test_outdated_parameters_yield_a_new_hash():
    stored = await Passwords(**FAST).hash("secret")
    check = await Passwords(**{**FAST, "time_cost": 2}).check(stored, "secret")
    assert check.ok
    assert check.new_hash and "t=2," in check.new_hash
    assert (await Passwords(**FAST).check(stored, "secret")).new_hash is None


def test_the_memory_budget_sets_how_many_hashes_run_at_once():
    assert max_concurrent_hashes(256, 65_536) == 4  # the default: 4 x 64 MiB
    assert max_concurrent_hashes(384, 65_536) == 6
    assert max_concurrent_hashes(10, 65_536) == 1  # always at least one


class SlowHasher:
    """Stands in for argon2: records how many run at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return "$argon2id$fake"


async def test_no_more_than_the_bound_run_at_once():
    passwords = Passwords(**FAST, max_concurrent=2, queue_seconds=10)
    passwords._hasher = slow = SlowHasher(0.05)  # type: ignore[assignment]
    results = await asyncio.gather(*(passwords.hash(f"p{i}") for i in range(8)))
    assert results == ["$argon2id$fake"] * 8
    assert slow.peak == 2


async def test_past_the_queue_time_the_answer_is_busy_with_retry_after():
    passwords = Passwords(**FAST, max_concurrent=1, queue_seconds=0.05)
    passwords._hasher = SlowHasher(0.5)  # type: ignore[assignment]
    first = asyncio.create_task(passwords.hash("a"))
    await asyncio.sleep(0.01)
    with pytest.raises(BusyError) as refused:
        await passwords.hash("b")
    assert (refused.value.status_code, refused.value.retry_after) == (503, 1)
    assert refused.value.message == "Busy, retry shortly"
    assert await first == "$argon2id$fake"
    assert passwords.waiting == 0
