"""Where the services are. Read from the environment when the Reflex backend starts."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class WebSettings:
    auth_url: str
    tickets_url: str
    api_timeout: float
    cookie_secure: bool

    @classmethod
    def from_env(cls) -> WebSettings:
        return cls(
            auth_url=os.environ.get("AUTH_URL", "http://127.0.0.1:3001").rstrip("/"),
            tickets_url=os.environ.get("TICKETS_URL", "http://127.0.0.1:3002").rstrip("/"),
            api_timeout=float(os.environ.get("API_TIMEOUT", "10")),
            cookie_secure=os.environ.get("COOKIE_SECURE", "true").lower() in ("1", "true", "yes"),
        )


SESSION_MAX_AGE = 86_400  # as the auth service's JWT lifetime default
