"""The web client as a managed subprocess (for the local stack and the browser tests)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import ticketing_web
from harness.servers import LOOPBACK, ServerProcess, free_port, python_path

# What the container image puts in its app root (src/python/web/Dockerfile): the
# package itself comes from its wheel, installed there.
IMAGE_APP_FILES = (
    "rxconfig.py",
    "reflex.lock",
    "tools/package.json",
    "tools/package-lock.json",
    "assets",
)
APP_FILES = ("ticketing_web", *IMAGE_APP_FILES)


def copy_app(destination: Path, files: tuple[str, ...] = APP_FILES) -> Path:
    """A private copy of the app root (Reflex writes .web/ and its lock there)."""
    source = Path(ticketing_web.__file__).resolve().parent.parent
    for name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (source / name).is_dir():
            shutil.copytree(
                source / name,
                target,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*_test.py", "conftest.py"),
            )
        else:
            shutil.copy2(source / name, target)
    return destination


class WebProcess(ServerProcess):
    """The Reflex app (prod mode, one port) started by our launcher from `app_root`."""

    name = "web"
    ready_pattern = re.compile(r"App running at: http://[\d.]+:(\d+)")

    def __init__(self, app_root: Path, env: dict[str, str], log_dir: Path | None = None) -> None:
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
        return super().start(timeout)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"
