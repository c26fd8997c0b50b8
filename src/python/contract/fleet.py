"""The five services as processes on one nats-server and one MongoDB-wire server, each
from a source tree of its own choosing: this checkout's, or an earlier commit's — the
previous release of a service running beside the new one, as a rolling update has them.

`Fleet.start(versions={"orders": [OLD, NEW]})` runs two orders processes, one from each
tree, sharing orders' database and durable consumers, as two pods of two releases do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.servers import ServiceProcess, python_path
from testkit.auth import TEST_JWT_KEY
from testkit.metrics import parse

SERVICES = ("auth", "tickets", "orders", "payments", "expiration")
REPO_ENV = "TICKETING_REPO"  # where the repository is (pants.toml passes the build root)
GIVEN_UP = ("poisoned", "invalid")  # a listener's outcomes that lose a message


def source_tree(commit: str, into: Path) -> Path:
    """The code of an earlier release, as a directory to put first on a service's
    path: `src/python` of an earlier commit of this repository (git archive); or wheels
    (`ticketing-orders-….whl` and the `ticketing-common` it was built with, separated by
    `os.pathsep`), unpacked together; or `commit` itself if it is a directory."""
    given = Path(commit)
    if given.is_dir():
        return given
    wheels = [Path(part) for part in commit.split(os.pathsep)]
    if all(wheel.suffix == ".whl" and wheel.is_file() for wheel in wheels):
        tree = into / "wheels"
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as unpacked:
                unpacked.extractall(tree)  # noqa: S202 -- zipfile keeps names inside `tree`
        return tree
    repo = os.environ.get(REPO_ENV) or str(Path.cwd())
    archive = into / f"{commit}.tar"
    git = shutil.which("git") or "git"
    with archive.open("wb") as out:
        done = subprocess.run(
            [git, "-C", repo, "archive", "--format=tar", commit, "src/python"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"no code of commit {commit} in {repo} ({done.stderr.strip()}): a shallow "
            "clone? `git fetch --unshallow`, or set ROLLING_FROM to another commit or to "
            "a src/python directory"
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into / commit, filter="data")
    return into / commit / "src/python"


@dataclass
class Fleet:
    """The services of one system (one database server, one stream)."""

    mongo_uri: str
    nats_url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)  # for every service
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def start(
        self, versions: dict[str, list[Path | None]] | None = None, only: tuple[str, ...] = SERVICES
    ) -> Fleet:
        """Each service (of `only`) from this checkout, or from the trees `versions`
        names (None: this checkout's), one process a tree."""
        shared = {
            "MONGO_URI": self.mongo_uri,
            "NATS_URL": self.nats_url,
            "JWT_KEY": TEST_JWT_KEY,
            "COOKIE_SECURE": "false",
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "1024",
            **self.env,
        }
        for service in only:
            for n, tree in enumerate((versions or {}).get(service, [None])):
                name = service if n == 0 else f"{service}-{n + 1}"
                process = ServiceProcess(name, f"{service}.main", shared, self.workdir / name)
                if tree is not None:  # its own code first; the libraries as ours
                    process.env["PYTHONPATH"] = f"{tree}{os.pathsep}{python_path()}"
                self.processes.setdefault(service, []).append(process)
                process.start()
        return self

    def stop(self) -> None:
        for processes in reversed(self.processes.values()):
            for process in processes:
                process.stop()

    def url(self, service: str, n: int = 0) -> str:
        return self.processes[service][n].url

    def failed_deliveries(self) -> float:
        """Deliveries a listener of any process gave up on: poisoned or invalid (nothing
        may)."""
        return sum(
            count
            for processes in self.processes.values()
            for process in processes
            for (name, labels), count in parse(
                httpx.get(f"{process.url}/metrics", timeout=10).text
            ).items()
            if name == "events_handled_total" and dict(labels).get("outcome") in GIVEN_UP
        )

    def tails(self, lines: int = 30) -> str:
        """The end of every process's log (what a failing test prints)."""
        return "\n".join(
            f"--- {process.name}\n"
            + "\n".join(process.log_path.read_text(errors="replace").splitlines()[-lines:])
            for processes in self.processes.values()
            for process in processes
        )

    def logged(self, pattern: str) -> list[str]:
        """Lines of any service's log matching `pattern` (e.g. what a listener terminated)."""
        found = []
        for processes in self.processes.values():
            for process in processes:
                text = process.log_path.read_text(errors="replace")
                found += [line for line in text.splitlines() if re.search(pattern, line)]
        return found
