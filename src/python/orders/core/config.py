"""Orders service settings (environment variables; see the README's table)."""

from __future__ import annotations

from pydantic import Field

from common.settings import EventingSettings


class OrdersSettings(EventingSettings):
    order_expiration_seconds: int = Field(
        900, ge=1, description="How long an order reserves its ticket before it expires"
    )
