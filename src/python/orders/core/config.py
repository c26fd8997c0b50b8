"""Orders service settings (environment variables; see the README's table)."""

from __future__ import annotations

from pydantic import Field, model_validator

from common.settings import EventingSettings


class OrdersSettings(EventingSettings):
    order_expiration_seconds: int = Field(
        900, ge=1, description="How long an order reserves its ticket before it expires"
    )

    max_unpaid_orders_per_user: int = Field(
        3, ge=0, description="Unpaid orders one user may hold at once (no hoarding; 0: no cap)"
    )

    @model_validator(mode="after")
    def _schedules_outlive_their_orders(self) -> OrdersSettings:
        # an order's expiry is a scheduled message on the stream (expiration service)
        self._outlived_by_the_stream(self.order_expiration_seconds, "ORDER_EXPIRATION_SECONDS")
        return self
