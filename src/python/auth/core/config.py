"""Auth service settings (environment variables; see the README's table)."""

from __future__ import annotations

from pydantic import Field, model_validator

from common.settings import EventingSettings


class AuthSettings(EventingSettings):
    """Auth publishes `session.revoked` (sign-out), so it connects to NATS too."""

    jwt_lifetime_seconds: int = Field(86_400, gt=0, description="Session/JWT lifetime")
    # argon2id cost; raising any of these makes sign-in rehash older passwords.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65_536, ge=8)
    argon2_parallelism: int = Field(1, ge=1)
    # Each argon2 operation holds `argon2_memory_kib` while it runs: at most
    # budget // memory cost run at once (256 MiB / 64 MiB = 4); the others wait up to
    # `argon2_queue_seconds`, then get 503 "Busy, retry shortly". See the README.
    argon2_memory_budget_mib: int = Field(256, ge=1)
    argon2_queue_seconds: float = Field(2.0, ge=0)
    # Brute force: after this many failed sign-ins for one email within the window,
    # sign-in for that email answers 429 until the window has passed.
    signin_max_failures: int = Field(5, ge=1)
    signin_failure_window_seconds: int = Field(900, ge=1)
    # How long a browser stays trusted for the account it signed in to (auth.devices):
    # its failed sign-ins are limited on that device alone.
    device_cookie_days: int = Field(365, ge=1)
    # Spraying: sign-in and sign-up attempts per client address within the window
    # (0: no limit). Generous by default so a test suite on loopback can sign up a few
    # hundred users a minute; Kubernetes sets them tighter (config.yaml).
    ip_signin_limit: int = Field(600, ge=0)
    ip_signup_limit: int = Field(600, ge=0)
    ip_limit_window_seconds: int = Field(600, ge=1)
    # Proxies in front of auth that each append the address they saw to X-Forwarded-For
    # (the gateway or the ingress: 1). The client is the address that many entries from
    # the right; with 0 it is the connection's peer and X-Forwarded-For is ignored.
    trusted_proxy_hops: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _sign_outs_outlive_their_tokens(self) -> AuthSettings:
        # a process starting later reads the sign-outs back from the stream
        self._outlived_by_the_stream(self.jwt_lifetime_seconds, "JWT_LIFETIME_SECONDS")
        return self
