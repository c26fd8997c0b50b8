"""Run the web client: `./pants run src/python/web:web` (prod mode, one port).

Prepares what Reflex needs offline — bun from the npm registry (pinned in
`tools/package-lock.json`), Reflex's version check and telemetry off, its caches kept
out of the home folder — then builds the frontend unless this code version is built
already (`.web/build/fingerprint`), and serves it with the Reflex backend
(`ticketing_web.serve_built`): a restart takes seconds, not a rebuild, and keeps the
frontend's file names, so tabs opened before it still load their pages.

Its children stay in its process group when it leads one (as under `./run`, which
kills the group whole before a restart: no server outlives a killed launcher), else
they get one of their own; SIGINT/SIGTERM stops them all (the backend's workers
included). The browser's websocket goes to `API_URL` (Reflex reads `REFLEX_API_URL`).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "aarch64", "arm64": "aarch64"}
# What an app root holds (the web image's Dockerfile copies the same, the package from its
# wheel).
APP_FILES = (
    "ticketing_web",
    "rxconfig.py",
    "reflex.lock",
    "tools/package.json",
    "tools/package-lock.json",
    "assets",
)


def find_app_root() -> Path:
    """The folder holding rxconfig.py: WEB_APP_DIR, else src/python/web from the repo."""
    if os.environ.get("WEB_APP_DIR"):
        return Path(os.environ["WEB_APP_DIR"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        for candidate in (folder, folder / "src" / "python" / "web"):
            if (candidate / "rxconfig.py").is_file() and (candidate / "ticketing_web").is_dir():
                return candidate
    raise SystemExit(
        "web: cannot find the app root (rxconfig.py); run from the repo or set WEB_APP_DIR"
    )


def copy_app(destination: Path) -> Path:
    """A private copy of the app root (Reflex writes .web/ and its lock there): each test
    and each stack builds in its own."""
    source = find_app_root()
    for name in APP_FILES:
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


def ensure_bun(app_root: Path) -> Path:
    """bun at Reflex's pinned version, installed from the npm registry on first use, and
    kept once per machine in the cache: every copy of the app (the tests make several)
    uses that one, so the registry is asked once, not once per copy."""
    tools = app_root / "tools"
    arch = ARCH.get(platform.machine().lower())
    if arch is None or sys.platform != "linux":
        raise SystemExit(
            f"web: no pinned bun for {sys.platform}/{platform.machine()}; set REFLEX_BUN_PATH"
        )
    package = f"@oven/bun-linux-{arch}"
    bun = tools / "node_modules" / package / "bin" / "bun"
    version = json.loads((tools / "package.json").read_text())["optionalDependencies"][package]
    shared = _cache_dir() / f"bun-{version}-linux-{arch}" / "bun"
    if bun.is_file():
        return bun
    if shared.is_file():
        return shared
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("web: npm not found; install Node.js with npm (needed once, for bun)")
    # One install at a time on this machine: concurrent `npm ci` runs on a cold npm cache
    # were seen to skip the optional package and still exit 0 (so did one run alone, on
    # a slow registry: hence the tries).
    lock_path = _cache_dir() / "bun-install.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for _attempt in range(3):
            if bun.is_file() or shared.is_file():
                break
            print("web: installing bun from the npm registry (first run only) ...", file=sys.stderr)
            try:
                subprocess.run(
                    [
                        npm,
                        "ci",
                        "--ignore-scripts",
                        "--no-audit",
                        "--no-fund",
                        "--prefix",
                        str(tools),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            except (OSError, subprocess.CalledProcessError) as exc:
                raise SystemExit(
                    f"web: could not install bun with npm ({exc}); is Node.js/npm installed?"
                ) from None
        if bun.is_file() and not shared.is_file():
            _keep(bun, shared)
    if shared.is_file():
        return shared
    if not bun.is_file():  # npm treats the package as optional: it may "succeed" without it
        raise SystemExit(f"web: npm ran but did not install {bun}; see npm's output above")
    return bun


def _keep(bun: Path, shared: Path) -> None:
    """The installed binary, kept in the cache: a hard link where it can be (no second
    copy of ~90 MB, e.g. in the web image), else a copy; put in place atomically."""
    shared.parent.mkdir(parents=True, exist_ok=True)
    partial = shared.with_suffix(f".{os.getpid()}")
    try:
        os.link(bun, partial)
    except OSError:
        shutil.copy2(bun, partial)
    os.replace(partial, shared)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ticketing-web"


def reflex_command(app_root: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment to run `reflex <args>` for the app at `app_root`, offline:
    pinned bun (installed on first use; a bun of your own, REFLEX_BUN_PATH, wins), no
    version check or telemetry, caches out of the home folder."""
    env = reflex_env(app_root)
    env.setdefault("REFLEX_BUN_PATH", str(ensure_bun(app_root)))
    return [sys.executable, "-m", "reflex", *args], env


def reflex_env(app_root: Path) -> dict[str, str]:
    """What every Reflex process of the app gets; serving a built frontend needs no bun
    (the web image has none)."""
    cache_dir = _cache_dir()
    env = dict(os.environ)
    env.update(
        REFLEX_CHECK_LATEST_VERSION="0",
        REFLEX_TELEMETRY_ENABLED="false",
        NPM_CONFIG_REGISTRY=env.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org"),
        REFLEX_DIR=str(cache_dir / "reflex"),
        BUN_INSTALL_CACHE_DIR=str(cache_dir / "bun"),
        # the Reflex subprocess imports this package from wherever this one came from
        PYTHONPATH=os.pathsep.join([str(app_root), *(os.path.abspath(p) for p in sys.path if p)]),
    )
    return env


def api_url(port: int) -> str:
    """Where browsers reach the websocket: `API_URL`, else this server's port. A host of
    `localhost` stands for the page's own host (Reflex swaps it in the browser; on an
    https page it also takes the page's port), so `http://localhost:8080` works from any
    machine that opens the gateway, and the default behind an https ingress. It is
    compiled into the frontend: the image is built with the default."""
    return os.environ.get("API_URL", "").rstrip("/") or f"http://localhost:{port}"


def fingerprint(app_root: Path, api: str) -> str:
    """What the built frontend depends on: the app's files, Reflex's version and the
    websocket's address (compiled into the bundle)."""
    digest = hashlib.sha256(f"reflex {version('reflex')}\napi {api}\n".encode())
    for name in APP_FILES:
        root = app_root / name
        if name == "ticketing_web" and not root.is_dir():  # an image: the installed wheel's
            root = Path(__file__).parent
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(f"{name}/{path.relative_to(root)}\n".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _stamp(app_root: Path) -> Path:
    return app_root / ".web" / "build" / "fingerprint"


def is_built(app_root: Path, api: str) -> bool:
    stamp = _stamp(app_root)
    return stamp.is_file() and stamp.read_text() == fingerprint(app_root, api)


def build(app_root: Path, api: str) -> int:
    """Install the frontend's packages and build it (what a container image bakes in),
    then stamp the build with its fingerprint."""
    _stamp(app_root).unlink(missing_ok=True)
    argv, env = reflex_command(app_root, "export", "--frontend-only", "--no-zip", "--env", "prod")
    env["REFLEX_API_URL"] = api
    code = subprocess.run(argv, cwd=app_root, env=env, stdin=subprocess.DEVNULL).returncode
    if code == 0:
        _stamp(app_root).write_text(fingerprint(app_root, api))
    return code


def start(app_root: Path, *, host: str, port: int) -> subprocess.Popen[bytes]:
    """Build the frontend if this code version is not built yet, then serve it (prod,
    one port); stop it with `stop()`."""
    api = api_url(port)
    settings = state_settings()  # a bad setting stops us before a build
    if not is_built(app_root, api):
        print("web: building the frontend (once per code version) ...", flush=True)
        code = build(app_root, api)
        if code != 0:
            raise SystemExit(f"web: the frontend's build failed (exit {code}); see above")
    env = {**reflex_env(app_root), "REFLEX_API_URL": api, **settings}
    argv = [sys.executable, "-m", "ticketing_web.serve_built", "--host", host, "--port", str(port)]
    return subprocess.Popen(
        argv, cwd=app_root, env=env, stdin=subprocess.DEVNULL, start_new_session=not _leads_group()
    )


def state_settings() -> dict[str, str]:
    """Where Reflex keeps each open tab's state, as Reflex's own settings.

    With `REDIS_URL`: in Redis, which every web process shares, so any of them serves
    any tab and a tab outlives the process it was on. Its lock per tab is held while an
    event runs: `REFLEX_REDIS_LOCK_EXPIRATION` (ms) defaults to three calls' worth of
    `API_TIMEOUT` instead of Reflex's 10 s, which one slow call could outlast. Without
    it: in this process, saved to files, so its tabs outlive a restart of it alone.
    `WEB_WORKERS` server processes (default 1, not the host's CPU count that Reflex
    would take — a pod sees the node's); more than one needs Redis."""
    redis_url = os.environ.get("REDIS_URL", "")
    workers = os.environ.get("WEB_WORKERS", "1")
    if not workers.isdigit() or int(workers) < 1:
        raise SystemExit(f"web: WEB_WORKERS must be a whole number of at least 1, not {workers!r}")
    if int(workers) > 1 and not redis_url:
        raise SystemExit(
            "web: WEB_WORKERS above 1 needs REDIS_URL (each worker would keep its tabs' "
            "state to itself)"
        )
    settings = {"GRANIAN_WORKERS": workers}
    if redis_url:
        api_timeout = float(os.environ.get("API_TIMEOUT", "10"))
        settings.update(
            REFLEX_STATE_MANAGER_MODE="redis",
            REFLEX_REDIS_URL=redis_url,
            REFLEX_REDIS_LOCK_EXPIRATION=os.environ.get(
                "REFLEX_REDIS_LOCK_EXPIRATION", str(int(3 * api_timeout * 1000))
            ),
        )
    return settings


def _leads_group() -> bool:
    return os.getpgrp() == os.getpid()


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM the server and its workers; SIGKILL what lingers."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # our group's SIGTERM is for them
    _signal_children(process, signal.SIGTERM)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    _signal_children(process, signal.SIGKILL)  # whatever is left (workers, a stuck server)
    return process.wait() if code is None else code


def _signal_children(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """The server and its workers: our group but us, when they share it (`start`)."""
    if _leads_group():
        for pid in group_members(os.getpgrp()):
            if pid != os.getpid():
                _send(os.kill, pid, sig)
    else:
        _send(os.killpg, process.pid, sig)  # a group of their own (start_new_session)


def _send(kill: Callable[[int, int], None], pid: int, sig: signal.Signals) -> None:
    try:
        kill(pid, sig)
    except ProcessLookupError:
        pass


def processes() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process (Linux: /proc)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            yield int(entry.name), int(fields[1]), int(fields[2])


def group_members(group: int) -> list[int]:
    """The processes of a process group."""
    return [pid for pid, _parent, pgrp in processes() if pgrp == group]


def _exit_like(code: int) -> None:
    """Exit as the server did: with its code, or killed by its signal."""
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # the two no handler can catch
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run the Ticketing web client (Reflex, prod mode)."
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))  # noqa: S104
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="install bun and build the frontend, then exit (container images)",
    )
    args = parser.parse_args()
    if args.build_only:
        sys.exit(build(find_app_root(), api_url(args.port)))
    process = start(find_app_root(), host=args.host, port=args.port)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    # Wait in short steps, not in a signal handler: Popen.wait is not re-entrant (a
    # handler's wait behind the main thread's hung the launcher until SIGKILL).
    while not stopping.is_set():
        try:
            code = process.wait(0.5)
        except subprocess.TimeoutExpired:
            continue
        _signal_children(process, signal.SIGKILL)  # the server died: its workers go too
        _exit_like(code)  # whoever supervises us sees how, and starts us again
    stop(process)
    sys.exit(0)


if __name__ == "__main__":
    main()
