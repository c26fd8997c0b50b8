"""Logging: one JSON object per line (LOG_FORMAT=json, the default: what a log
collector parses), or readable text (LOG_FORMAT=text: `./run`).

Each line says which service wrote it and, when it was written while serving a request
or handling an event, that request's id or that event's subject and Nats-Msg-Id, and
the trace and span it belongs to (`common.observability.tracing`) — so "where did my order go?" is a
search for one trace id across the services' logs (and its trace shows the path).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from common.observability.tracing import current_ids

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being served (set by `common.middleware`)."""

handled_event: ContextVar[tuple[str, str] | None] = ContextVar("handled_event", default=None)
"""(subject, Nats-Msg-Id) of the event a listener is handling."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """Readable lines; one written inside a trace ends with its trace id, for
    `./run traces <id>`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if (ids := current_ids()) is not None:
            text += f" [trace {ids[0]}]"
        return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (current := request_id.get()) is not None:
            line["request_id"] = current
        if (event := handled_event.get()) is not None:
            line["subject"], line["msg_id"] = event
        if (ids := current_ids()) is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "json", service: str = "-") -> None:
    """The root logger, to stdout (uvicorn's own loggers too: `run_service` leaves them
    unconfigured, so they propagate here)."""
    handler = logging.StreamHandler(sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
