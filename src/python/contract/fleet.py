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
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.servers import ServiceProcess, python_path
from testkit.auth import TEST_JWT_KEY

SERVICES = ("auth", "tickets", "orders", "payments", "expiration")
REPO_ENV = "TICKETING_REPO"  # where the repository is (pants.toml passes the build root)
METRIC = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.e+-]+)$")


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

    def metrics(self) -> dict[str, float]:
        """Every process's listener figures, summed: `events_handled{outcome=...}`,
        `consumer_pending_messages`, ..., keyed `<name>{<labels>}`."""
        totals: dict[str, float] = {}
        for processes in self.processes.values():
            for process in processes:
                text = httpx.get(f"{process.url}/metrics", timeout=10).text
                for line in text.splitlines():
                    if match := METRIC.match(line):
                        key = f"{match[1]}{{{match[2]}}}"
                        totals[key] = totals.get(key, 0) + float(match[3])
        return totals

    def failed_deliveries(self) -> float:
        """Deliveries a listener gave up on: poisoned or invalid (nothing may)."""
        return sum(
            value
            for key, value in self.metrics().items()
            if key.startswith("events_handled") and re.search(r'outcome="(poisoned|invalid)"', key)
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


def until(condition, within: float = 60.0, every: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not so within {within} s: {getattr(condition, '__name__', condition)}"
            )
        time.sleep(every)
