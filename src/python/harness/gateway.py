"""The local gateway: Caddy routing one address like the Kubernetes ingress (`./run` and
the browser tests put it in front of the web client and the services)."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from harness.servers import LOOPBACK, ServerProcess, find_executable


class CaddyGateway(ServerProcess):
    """`upstreams`: `<NAME>_UPSTREAM` → `host:port` for each route of the Caddyfile."""

    name = "gateway"
    ready_pattern = re.compile(r"serving initial configuration")

    def __init__(self, workdir: Path, port: int, upstreams: dict[str, str]) -> None:
        super().__init__(workdir, port)
        self.caddyfile = self.workdir / "Caddyfile"
        self.caddyfile.write_text(resources.files("harness").joinpath("Caddyfile").read_text())
        self.env = {
            **os.environ,
            "GATEWAY_HOST": LOOPBACK,
            "GATEWAY_PORT": str(port),
            "XDG_DATA_HOME": str(self.workdir / "data"),
            "XDG_CONFIG_HOME": str(self.workdir / "config"),
            **upstreams,
        }

    def argv(self) -> list[str]:
        return [
            find_executable("caddy"),
            "run",
            "--config",
            str(self.caddyfile),
            "--adapter",
            "caddyfile",
        ]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.requested_port}"
