"""Password hashing with argon2id, and sign-in checks that do not reveal whether an
email exists (an unknown email costs the same verification as a wrong password)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from auth.core.config import AuthSettings
from common.errors import BusyError


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used outdated parameters


def max_concurrent_hashes(memory_budget_mib: int, memory_kib: int) -> int:
    """How many argon2 operations fit in the memory budget at once (at least one)."""
    return max(1, memory_budget_mib * 1024 // memory_kib)


class Passwords:
    """argon2id hashing and verification, at most `max_concurrent` at once: each one
    holds `memory_kib` for its duration, so a burst must queue, not add up to an OOM."""

    def __init__(
        self,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        *,
        max_concurrent: int = 4,
        queue_seconds: float = 2.0,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the email is unknown, so both paths do the same work.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._slots = asyncio.Semaphore(max_concurrent)
        self._queue_seconds = queue_seconds
        self.waiting = 0  # requests queued for a slot right now

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Passwords:
        return cls(
            settings.argon2_time_cost,
            settings.argon2_memory_kib,
            settings.argon2_parallelism,
            max_concurrent=max_concurrent_hashes(
                settings.argon2_memory_budget_mib, settings.argon2_memory_kib
            ),
            queue_seconds=settings.argon2_queue_seconds,
        )

    async def hash(self, password: str) -> str:
        return await self._bounded(self._hasher.hash, password)

    async def check(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Verify `password`; with `stored_hash=None` (unknown user) always fails, after
        the same amount of work."""
        return await self._bounded(self._check, stored_hash, password)

    async def _bounded(self, work, *args):  # type: ignore[no-untyped-def]
        """Run `work` in a thread (argon2 is C code that releases the GIL: the event loop
        stays free) once a slot is free; 503 if none frees up within the queue time."""
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self._queue_seconds)
        except TimeoutError:
            raise BusyError(retry_after=1) from None
        finally:
            self.waiting -= 1
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self._slots.release()

    def _check(self, stored_hash: str | None, password: str) -> PasswordCheck:
        try:
            self._hasher.verify(stored_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        if stored_hash is None:
            return PasswordCheck(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return PasswordCheck(ok=True, new_hash=self._hasher.hash(password))
        return PasswordCheck(ok=True)
