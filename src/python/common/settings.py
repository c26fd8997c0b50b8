"""Settings from the environment (pydantic-settings), checked once at start.

A missing or invalid variable stops the process with one line naming it — the original's
`NATS_URL must be defined` — instead of a failure on the first request.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Literal, TypeVar

from nats.js.api import StreamConfig
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.events.contracts import ticketing_stream
from common.events.publisher import DEFAULT_PUBLISH_TIMEOUT

S = TypeVar("S", bound=BaseSettings)

MIN_JWT_KEY_LENGTH = 32


class ProcessSettings(BaseSettings):
    """What every service process reads. Variable names are the upper-cased field names."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    host: str = Field("0.0.0.0", description="Interface to listen on")  # noqa: S104 (in a pod)
    port: int = Field(3000, ge=0, le=65535, description="Port to listen on (0: any free one)")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one object per line (for a log collector); text: readable"
    )
    max_body_bytes: int = Field(100_000, ge=1, description="Largest request body accepted")
    otel_exporter_otlp_endpoint: str = Field(
        "", description="Send traces by OTLP/HTTP here, e.g. http://collector:4318 (unset: not)"
    )
    traces_dir: Path | None = Field(
        None, description="Also append spans to <dir>/<service>.jsonl (`./run`: .state/traces)"
    )


class ServiceSettings(ProcessSettings):
    """An API service with a database of its own, reading the user from the session."""

    mongo_uri: str = Field(min_length=1, description="MongoDB connection string")
    jwt_key: SecretStr = Field(description="HS256 key shared by all services (>= 32 chars)")
    cookie_secure: bool = Field(True, description="Send the session cookie over HTTPS only")
    # Writes (creates, edits, payments) one user may send, per minute and per day (0: no
    # limit): a script with one account cannot flood the list (`common.limits`).
    # Generous by default, for test clients and ./run; Kubernetes sets 30 and 120
    # (config.yaml).
    user_writes_per_minute: int = Field(600, ge=0, description="Writes per user per minute")
    user_writes_per_day: int = Field(20_000, ge=0, description="Writes per user per day")

    @field_validator("jwt_key")
    @classmethod
    def _strong_enough(cls, key: SecretStr) -> SecretStr:
        # HS256 wants a key of at least 32 bytes (RFC 7518 3.2).
        if len(key.get_secret_value()) < MIN_JWT_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_JWT_KEY_LENGTH} characters; make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return key


class NatsSettings(ProcessSettings):
    """A process that publishes or listens to events.

    The original's NATS_CLUSTER_ID has no JetStream meaning and is not read: the stream
    name is fixed (`TICKETING`) by the events contract.
    """

    nats_url: str = Field(
        min_length=1,
        description="NATS server URL, e.g. nats://nats:4222; a cluster's, comma-separated",
    )
    nats_client_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="Client name shown by NATS (the pod name in Kubernetes)",
    )
    publish_timeout: float = Field(
        DEFAULT_PUBLISH_TIMEOUT, gt=0, description="Seconds to wait for a JetStream ack"
    )
    outbox_interval: float = Field(
        1.0, gt=0, description="Seconds between outbox heartbeats and retries of unsent events"
    )
    outbox_dead_after: float = Field(
        30.0,
        gt=0,
        le=90,
        description="Seconds a writer's heartbeat may stop before another process sends "
        "its unsent events (it must stay well inside the stream's 120 s duplicate window)",
    )
    # The stream's limits in this environment (ensure_stream never loosens a stricter
    # one set on the stream by hand): messages older than max age, and past max bytes
    # the oldest ones, are dropped (`common.events.contracts.ticketing_stream`).
    stream_max_age_seconds: float = Field(
        7 * 86_400, ge=0, description="Keep messages this long (0: no limit)"
    )
    stream_max_bytes: int = Field(
        -1, ge=-1, description="Stream size limit in bytes (-1: no limit)"
    )
    stream_replicas: int = Field(
        1, ge=1, le=5, description="Copies of the stream on a JetStream cluster (1: one server)"
    )
    outbox_stuck_seconds: float = Field(
        60.0, gt=0, description="/readyz fails while an unsent event is older than this"
    )

    def stream_config(self) -> StreamConfig:
        return ticketing_stream(
            max_age_seconds=self.stream_max_age_seconds,
            max_bytes=self.stream_max_bytes,
            replicas=self.stream_replicas,
        )

    def _outlived_by_the_stream(self, seconds: float, name: str) -> None:
        """What a process reads back from the stream must stay there that long."""
        if self.stream_max_age_seconds and seconds > self.stream_max_age_seconds:
            raise ValueError(
                f"{name} ({seconds:g} s) is longer than STREAM_MAX_AGE_SECONDS "
                f"({self.stream_max_age_seconds:g} s): raise the stream's max age"
            )


class EventingSettings(NatsSettings, ServiceSettings):
    """An API service with its own database that publishes or listens to events."""


def describe_settings_error(exc: ValidationError) -> str:
    """One line naming each bad variable: `MONGO_URI must be defined`."""
    problems = []
    for err in exc.errors():
        name = "_".join(str(part) for part in err["loc"]).upper() or "settings"
        if err["type"] == "missing":
            problems.append(f"{name} must be defined")
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{name} is invalid: {message}")
    return "; ".join(problems)


def load_settings(cls: type[S]) -> S:
    """Read settings from the environment, or exit(2) with one clear line."""
    try:
        return cls()
    except ValidationError as exc:
        print(f"configuration error: {describe_settings_error(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
