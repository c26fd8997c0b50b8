"""Password hashing with argon2id, and sign-in checks that do not reveal whether an
email exists (an unknown email costs the same verification as a wrong password)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from auth.core.config import AuthSettings


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used outdated parameters


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the email is unknown, so both paths do the same work.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Passwords:
        return cls(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )

    async def hash(self, password: str) -> str:
        # argon2 is CPU-bound C code that releases the GIL: keep the event loop free.
        return await asyncio.to_thread(self._hasher.hash, password)

    async def check(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Verify `password`; with `stored_hash=None` (unknown user) always fails, after
        the same amount of work."""
        return await asyncio.to_thread(self._check, stored_hash, password)

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
