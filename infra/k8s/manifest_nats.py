"""NATS as infra/k8s/nats-depl.yaml configures it, for tests: its nats.conf (each
service its own user and subjects) on a real nats-server."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from harness.servers import NatsServer, find_executable

ROOT = Path.cwd()
USERS = ("auth", "tickets", "orders", "expiration", "payments")


def manifest(kind: str, name: str) -> dict[str, Any]:
    [doc] = [
        doc
        for doc in yaml.safe_load_all((ROOT / "infra/k8s/nats-depl.yaml").read_text())
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    ]
    return doc


def nats_conf(store: Path, cluster_port: int | None = None) -> str:
    """The manifest's nats.conf with this test's store and (for a cluster node) cluster
    port; without one, as a single server (no cluster block). The permissions and the
    route authorization are the manifest's, unchanged."""
    text: str = manifest("ConfigMap", "nats-config")["data"]["nats.conf"]
    text = text.replace("store_dir: /data", f"store_dir: {store}")
    if cluster_port is None:
        text = re.sub(r"\n\s*cluster \{.*?\n\s*\}\n", "\n", text, flags=re.S)
    else:
        text = re.sub(r"(cluster \{.*?port: )6222", rf"\g<1>{cluster_port}", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.startswith("http:"))


class PermissionedNats(NatsServer):
    """nats-server with the Kubernetes configuration, passwords in its environment as
    the Secret puts them there."""

    def __init__(
        self, workdir: Path, pod: str = "nats-0", passwords: dict[str, str] | None = None
    ) -> None:
        super().__init__(workdir)
        self.passwords = passwords or {user: secrets.token_hex(16) for user in USERS}
        self.env = {
            **os.environ,
            "POD_NAME": pod,
            **{f"{user.upper()}_NATS_PASSWORD": pw for user, pw in self.passwords.items()},
        }
        self.config = workdir / "nats.conf"

    def conf(self) -> str:
        return nats_conf(self.workdir / "jetstream")

    def argv(self) -> list[str]:
        self.config.write_text(self.conf())
        port = str(self.requested_port or -1)
        return [find_executable("nats-server"), "-c", str(self.config), "-a", self.host, "-p", port]

    def url_for(self, user: str, password: str | None = None) -> str:
        secret = self.passwords[user] if password is None else password
        return f"nats://{user}:{secret}@{self.host}:{self.port}"
