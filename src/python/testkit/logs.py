"""Capture what a logger writes, as the JSON objects our formatter makes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from common.observability.logs import JsonFormatter


@contextmanager
def json_log_lines(
    service: str, logger: str = "", level: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The lines `logger` (default: the root) writes inside the block, formatted by
    `common.observability.logs.JsonFormatter(service)` and parsed into the yielded list when the block
    ends. `level`: the logger's level meanwhile."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(service))
    target = logging.getLogger(logger or None)
    previous = target.level
    target.addHandler(handler)
    if level is not None:
        target.setLevel(level)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)
        lines.extend(json.loads(text) for text in out.getvalue().splitlines())
