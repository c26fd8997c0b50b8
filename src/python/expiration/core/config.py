"""Expiration service settings (environment variables; see the README's table)."""

from __future__ import annotations

from common.settings import NatsSettings


class ExpirationSettings(NatsSettings):
    """NATS only: the schedules live in the stream, so this service keeps no database."""
