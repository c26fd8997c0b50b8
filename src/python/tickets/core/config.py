"""Tickets service settings (environment variables; see the README's table)."""

from __future__ import annotations

from common.settings import EventingSettings


class TicketsSettings(EventingSettings):
    """Everything it reads is shared with other eventing services (`EventingSettings`);
    settings of its own go here."""
