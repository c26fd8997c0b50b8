"""The web client as a managed subprocess (for the local stack and the browser tests).

It runs `python -m ticketing_web.launcher`; the harness imports no app package."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from harness.servers import LOOPBACK, ServerProcess, free_port, python_path, wait_http_ok


class WebProcess(ServerProcess):
    """The Reflex app (prod mode, one port) started by our launcher from `app_root`."""

    name = "web"
    ready_pattern = re.compile(r"App running at: http://[\d.]+:(\d+)")

    def __init__(
        self, app_root: Path, env: dict[str, str], log_dir: Path | None = None, name: str = "web"
    ) -> None:
        self.name = name  # `web`, `web-2`, ... when several serve one app (with Redis)
        super().__init__(log_dir or app_root)
        self.app_root = app_root
        self.env = {**os.environ, "PYTHONPATH": python_path(), "WEB_APP_DIR": str(app_root), **env}

    def argv(self) -> list[str]:
        port = self.requested_port or free_port()
        return [
            sys.executable,
            "-m",
            "ticketing_web.launcher",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
        ]

    def start(self, timeout: float = 600.0) -> ServerProcess:  # a cold build takes minutes
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start(timeout)
        # Reflex says "App running" before its server listens: ready once it answers
        deadline = time.monotonic() + 60
        while self.running and time.monotonic() < deadline:
            if wait_http_ok(f"{self.url}/ping", 1):
                return self
        code = self.process.poll() if self.process else None
        tail = self.log_path.read_bytes()[offset:][-2000:].decode(errors="replace")
        self.stop()
        said = f"exited (code {code})" if code is not None else "did not answer /ping"
        raise RuntimeError(f"web {said} (log {self.log_path}):\n{tail}")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"
