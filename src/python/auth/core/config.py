"""Auth service settings (environment variables; see the README's table)."""

from __future__ import annotations

from pydantic import Field

from common.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    jwt_lifetime_seconds: int = Field(86_400, gt=0, description="Session/JWT lifetime")
    # argon2id cost; raising any of these makes sign-in rehash older passwords.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65_536, ge=8)
    argon2_parallelism: int = Field(1, ge=1)
    # Brute force: after this many failed sign-ins for one email within the window,
    # sign-in for that email answers 429 until the window has passed.
    signin_max_failures: int = Field(5, ge=1)
    signin_failure_window_seconds: int = Field(900, ge=1)
