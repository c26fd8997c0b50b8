"""Tickets service settings (environment variables; see the README's table)."""

from __future__ import annotations

from pydantic import Field

from ticketing_common.settings import EventingSettings


class TicketsSettings(EventingSettings):
    outbox_interval: float = Field(
        1.0, gt=0, description="Seconds between outbox relay scans for unsent events"
    )
